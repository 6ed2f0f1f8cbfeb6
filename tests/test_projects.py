"""DevOpsProject validation: every bad input named with its field and its fix."""

from devops_operator import projects
from devops_operator.api.devopsproject import DevOpsProjectSpec


def spec(**overrides: object) -> DevOpsProjectSpec:
    wire: dict[str, object] = {
        "project": "shop",
        "organization": "acme",
        "environments": [{"name": "test", "autoApprove": True}, {"name": "prod", "production": True}],
    }
    wire.update(overrides)
    return DevOpsProjectSpec.model_validate(wire)


def test_valid_project_renders_an_example_name_per_environment() -> None:
    report = projects.validate_project("shop", spec())
    assert report.valid, report.problems
    assert [(e.name, e.example_resource_name) for e in report.environments] == [
        ("test", "shop-core-test-api"),
        ("prod", "shop-core-prod-api"),
    ]
    assert report.environments[1].production is True


def test_project_name_defaults_to_metadata_name() -> None:
    report = projects.validate_project("webshop", spec(project=None))
    assert report.environments[0].example_resource_name == "webshop-core-test-api"


def test_unknown_placeholder_is_reported_on_the_pattern_field() -> None:
    report = projects.validate_project("shop", spec(naming={"pattern": "{project}-{team}-{resource}"}))
    assert [p.field for p in report.problems] == ["spec.naming.pattern"]
    assert "{team}" in report.problems[0].message


def test_no_environments() -> None:
    report = projects.validate_project("shop", spec(environments=[]))
    assert [p.field for p in report.problems] == ["spec.environments"]
    assert "add at least one" in report.problems[0].message


def test_production_with_auto_approve_is_refused() -> None:
    envs = [{"name": "prod", "production": True, "autoApprove": True}]
    report = projects.validate_project("shop", spec(environments=envs))
    assert [p.field for p in report.problems] == ["spec.environments[0].autoApprove"]
    assert "production never auto-applies" in report.problems[0].message


def test_production_auto_grant_is_refused() -> None:
    envs = [{"name": "prod", "production": True, "autoGrantPermissions": True}]
    report = projects.validate_project("shop", spec(environments=envs))
    assert [p.field for p in report.problems] == ["spec.environments[0].autoGrantPermissions"]


def test_duplicate_environment_names() -> None:
    report = projects.validate_project("shop", spec(environments=[{"name": "test"}, {"name": "test"}]))
    assert any(p.field == "spec.environments[1].name" for p in report.problems)


def test_secret_source_without_a_secret_ref() -> None:
    envs = [{"name": "test", "credentials": {"source": "secret"}},
            {"name": "prod", "discoveryCredentials": {"source": "secret"}}]
    report = projects.validate_project("shop", spec(environments=envs))
    assert [p.field for p in report.problems] == [
        "spec.environments[0].credentials.secretRef", "spec.environments[1].discoveryCredentials.secretRef"]


def test_irsa_without_a_role_uses_the_pods_own_role() -> None:
    envs = [{"name": "test", "credentials": {"source": "irsa"}}]
    report = projects.validate_project("shop", spec(environments=envs))
    assert report.valid and report.environments[0].credentials_source == "irsa"


def test_environment_region_must_be_a_region() -> None:
    _, problems = projects.parse_spec({"environments": [{"name": "test", "region": "Europe"}]})
    assert [p.field for p in problems] == ["spec.environments[0].region"]


def test_rendered_name_over_the_limit() -> None:
    report = projects.validate_project(
        "shop", spec(project="p" * 40, subsystem="s" * 30, naming={"maxLength": 20})
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


def test_a_malformed_change_window_names_its_field() -> None:
    from devops_operator.api.devopsproject import DevOpsProjectSpec
    from devops_operator.projects import validate_project

    spec = DevOpsProjectSpec.model_validate({"environments": [
        {"name": "prod", "production": True,
         "changeWindows": [{"schedule": "0 22 * * 1-5", "duration": "8h"},
                           {"kind": "deny", "schedule": "0 25 * * *", "duration": "1h", "timeZone": "Nowhere/Else"}]},
    ]})
    report = validate_project("shop", spec)
    assert [p.field for p in report.problems] == [
        "spec.environments[0].changeWindows[1].schedule", "spec.environments[0].changeWindows[1].timeZone"]
