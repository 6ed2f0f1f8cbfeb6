"""DevOpsProject validation: every bad input named with its field and its fix."""

from collections.abc import Mapping

from devops_operator import projects
from devops_operator.api.devopsproject import DevOpsProjectSpec

SECRETS: dict[str, dict[str, str]] = {
    "prod-keys": {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "x" * 40},
    "half-keys": {"aws_access_key_id": "AKIAEXAMPLE"},
}


def read_secret(name: str) -> Mapping[str, str] | None:
    return SECRETS.get(name)


def spec(**overrides: object) -> DevOpsProjectSpec:
    wire: dict[str, object] = {
        "project": "shop",
        "organization": "acme",
        "environments": [{"name": "test", "autoApprove": True}, {"name": "prod", "production": True}],
    }
    wire.update(overrides)
    return DevOpsProjectSpec.model_validate(wire)


def test_valid_project_renders_an_example_name_per_environment() -> None:
    report = projects.validate_project("shop", spec(), read_secret)
    assert report.valid, report.problems
    assert [(e.name, e.example_resource_name) for e in report.environments] == [
        ("test", "shop-core-test-api"),
        ("prod", "shop-core-prod-api"),
    ]
    assert report.environments[1].production is True


def test_project_name_defaults_to_metadata_name() -> None:
    report = projects.validate_project("webshop", spec(project=None), read_secret)
    assert report.environments[0].example_resource_name == "webshop-core-test-api"


def test_unknown_placeholder_is_reported_on_the_pattern_field() -> None:
    report = projects.validate_project("shop", spec(naming={"pattern": "{project}-{team}-{resource}"}), read_secret)
    assert [p.field for p in report.problems] == ["spec.naming.pattern"]
    assert "{team}" in report.problems[0].message


def test_no_environments() -> None:
    report = projects.validate_project("shop", spec(environments=[]), read_secret)
    assert [p.field for p in report.problems] == ["spec.environments"]
    assert "add at least one" in report.problems[0].message


def test_production_with_auto_approve_is_refused() -> None:
    envs = [{"name": "prod", "production": True, "autoApprove": True}]
    report = projects.validate_project("shop", spec(environments=envs), read_secret)
    assert [p.field for p in report.problems] == ["spec.environments[0].autoApprove"]
    assert "production never auto-applies" in report.problems[0].message


def test_production_auto_grant_is_refused() -> None:
    envs = [{"name": "prod", "production": True, "autoGrantPermissions": True}]
    report = projects.validate_project("shop", spec(environments=envs), read_secret)
    assert [p.field for p in report.problems] == ["spec.environments[0].autoGrantPermissions"]


def test_duplicate_environment_names() -> None:
    report = projects.validate_project("shop", spec(environments=[{"name": "test"}, {"name": "test"}]), read_secret)
    assert any(p.field == "spec.environments[1].name" for p in report.problems)


def test_missing_credentials_secret_names_the_secret_and_the_keys() -> None:
    envs = [{"name": "prod", "production": True,
             "credentials": {"source": "secret", "secretRef": {"name": "absent"}}}]
    report = projects.validate_project("shop", spec(environments=envs), read_secret)
    assert [p.field for p in report.problems] == ["spec.environments[0].credentials.secretRef.name"]
    assert "'absent' does not exist" in report.problems[0].message
    assert "aws_secret_access_key" in report.problems[0].message


def test_secret_without_a_key() -> None:
    envs = [{"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "half-keys"}}}]
    report = projects.validate_project("shop", spec(environments=envs), read_secret)
    assert "lacks key(s) aws_secret_access_key" in report.problems[0].message


def test_secret_with_both_keys_is_fine_and_discovery_identity_is_checked_too() -> None:
    envs = [{"name": "test",
             "credentials": {"source": "secret", "secretRef": {"name": "prod-keys"}},
             "discoveryCredentials": {"source": "secret", "secretRef": {"name": "absent"}}}]
    report = projects.validate_project("shop", spec(environments=envs), read_secret)
    assert [p.field for p in report.problems] == ["spec.environments[0].discoveryCredentials.secretRef.name"]


def test_irsa_needs_a_role() -> None:
    envs = [{"name": "test", "credentials": {"source": "irsa"}}]
    report = projects.validate_project("shop", spec(environments=envs), read_secret)
    assert [p.field for p in report.problems] == ["spec.environments[0].credentials.roleArn"]


def test_rendered_name_over_the_limit() -> None:
    report = projects.validate_project(
        "shop", spec(project="p" * 40, subsystem="s" * 30, naming={"maxLength": 20}), read_secret
    )
    assert report.problems and "over the limit of 20" in report.problems[0].message


def test_parse_spec_turns_type_errors_into_field_problems() -> None:
    parsed, problems = projects.parse_spec({"environments": [{"name": "Prod!"}], "bogus": 1})
    assert parsed is None
    fields = {p.field for p in problems}
    assert "spec.environments[0].name" in fields
    assert "spec.bogus" in fields


def test_resource_name_is_what_every_feature_uses() -> None:
    assert projects.resource_name(spec(), "shop", "prod", "orders") == "shop-core-prod-orders"
