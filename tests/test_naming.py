"""The naming module: what users write as patterns and what names they get."""

import pytest

from devops_operator import naming


def test_renders_every_placeholder_lowercased_and_dashed() -> None:
    pattern = naming.parse_pattern("{organization}-{project}-{subsystem}-{environment}-{resource}")
    name = pattern.render(
        {"organization": "Acme", "project": "Shop", "subsystem": "core", "environment": "prod",
         "resource": "Orders Table"}
    )
    assert name == "acme-shop-core-prod-orders-table"


def test_unknown_placeholder_names_it_and_lists_the_allowed_ones() -> None:
    with pytest.raises(naming.NamingError) as err:
        naming.parse_pattern("{project}-{region}-{resource}")
    assert "{region}" in str(err.value)
    assert "{organization}" in str(err.value)


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("{project}-{environment}", "no {resource}"),
        ("{project}-{resource", "unbalanced"),
        ("{project}/{resource}", "'/'"),
        ("{project:>10}-{resource}", "format spec"),
    ],
)
def test_invalid_patterns_say_what_is_wrong(pattern: str, fragment: str) -> None:
    with pytest.raises(naming.NamingError, match=None) as err:
        naming.parse_pattern(pattern)
    assert fragment in str(err.value)


def test_missing_value_for_a_used_placeholder_is_an_error() -> None:
    pattern = naming.parse_pattern("{organization}-{project}-{resource}")
    with pytest.raises(naming.NamingError, match=r"\{organization\}"):
        pattern.render({"project": "shop", "resource": "api", "organization": None})


def test_unused_placeholders_need_no_value() -> None:
    pattern = naming.parse_pattern("{project}-{resource}")
    assert pattern.render({"project": "shop", "resource": "api"}) == "shop-api"


def test_max_length_is_enforced_with_the_fix_in_the_message() -> None:
    pattern = naming.parse_pattern("{project}-{resource}")
    with pytest.raises(naming.NamingError, match="maxLength"):
        pattern.render({"project": "a" * 40, "resource": "b" * 40}, max_length=63)


def test_matches_checks_existing_names_for_compliance() -> None:
    pattern = naming.parse_pattern("{project}-{environment}-{resource}")
    fixed = {"project": "shop", "environment": "prod"}
    assert pattern.matches("shop-prod-orders-table", fixed)
    assert not pattern.matches("shop-test-orders", fixed)
    assert not pattern.matches("Shop-prod-orders", fixed)
    assert not pattern.matches("shop-prod-", fixed)


def test_sanitize_collapses_separators() -> None:
    assert naming.sanitize("  My__App  v2 ") == "my-app-v2"
