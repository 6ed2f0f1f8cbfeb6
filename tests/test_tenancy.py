"""The tenancy policy: pure decisions over a namespace, its labels and a project's spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devops_operator.api.common import LabelSelector
from devops_operator.api.devopsproject import CredentialsSource, DevOpsProjectSpec
from devops_operator.tenancy import (
    PolicySource,
    TenancyPolicy,
    TenancyPolicyError,
    TenancyRule,
    parse_policy,
    project_violations,
    reference_grant,
)

ROLE = "arn:aws:iam::111122223333:role/payments-deploy"


def spec(*environments: dict[str, Any], **extra: Any) -> DevOpsProjectSpec:
    return DevOpsProjectSpec.model_validate({"environments": list(environments), **extra})


def fields(problems: list[Any]) -> list[str]:
    return [problem.field for problem in problems]


def test_by_default_a_tenant_namespace_may_only_use_its_own_keys() -> None:
    policy = TenancyPolicy()
    ambient = project_violations(policy, "team-a", spec({"name": "test"}))
    assert fields(ambient) == ["spec.environments[0].credentials.source"]
    assert "the operator's own AWS identity is not allowed here (allowed: secret)" in ambient[0].message
    assert "rule 'default' for namespace 'team-a'" in ambient[0].message

    # irsa without a roleArn is the operator pod's identity too.
    irsa = project_violations(policy, "team-a", spec({"name": "test", "credentials": {"source": "irsa"}}))
    assert "irsa without a roleArn (the operator's own AWS identity)" in irsa[0].message

    # irsa assuming a role would assume it with the operator's identity: refused without a roleArns rule.
    assumed = project_violations(policy, "team-a", spec(
        {"name": "test", "credentials": {"source": "irsa", "roleArn": ROLE}}))
    assert fields(assumed) == ["spec.environments[0].credentials.source", "spec.environments[0].credentials.roleArn"]

    # The namespace's own keys, even assuming a role with them: allowed.
    own = spec({"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "k"}, "roleArn": ROLE}})
    assert project_violations(policy, "team-a", own) == []


def test_the_operator_namespace_may_use_the_operator_identity() -> None:
    policy = TenancyPolicy(operator_namespace="platform")
    assert project_violations(policy, "platform", spec({"name": "test", "credentials": {"source": "irsa",
                                                                                         "roleArn": ROLE}})) == []
    assert project_violations(policy, "platform", spec({"name": "test"})) == []


def test_rules_name_roles_accounts_and_sources() -> None:
    rule = TenancyRule(name="payments", namespaces=["payments-*"], credential_sources=[CredentialsSource.IRSA],
                       role_arns=["arn:aws:iam::111122223333:role/payments-*"], account_ids=["111122223333"])
    policy = TenancyPolicy(rules=[rule])
    good = spec({"name": "prod", "accountId": "111122223333", "credentials": {"source": "irsa", "roleArn": ROLE}})
    assert project_violations(policy, "payments-api", good) == []

    other_role = spec({"name": "prod", "accountId": "111122223333",
                       "credentials": {"source": "irsa", "roleArn": "arn:aws:iam::111122223333:role/admin"}})
    assert fields(project_violations(policy, "payments-api", other_role)) == [
        "spec.environments[0].credentials.roleArn"]

    other_account = spec({"name": "prod", "accountId": "999988887777",
                          "credentials": {"source": "irsa", "roleArn": "arn:aws:iam::999988887777:role/payments-x"}})
    problems = project_violations(policy, "payments-api", other_account)
    assert fields(problems) == ["spec.environments[0].credentials.roleArn", "spec.environments[0].credentials.roleArn",
                                "spec.environments[0].accountId"]
    assert "account 999988887777" in problems[1].message

    no_account = spec({"name": "prod", "credentials": {"source": "irsa", "roleArn": ROLE}})
    missing = project_violations(policy, "payments-api", no_account)
    assert fields(missing) == ["spec.environments[0].accountId"]
    assert "set accountId to one of them" in missing[0].message

    # Discovery credentials are held to the same rule.
    discovery = spec({"name": "prod", "accountId": "111122223333", "credentials": {"source": "irsa", "roleArn": ROLE},
                      "discoveryCredentials": {"source": "ambient"}})
    assert fields(project_violations(policy, "payments-api", discovery)) == [
        "spec.environments[0].discoveryCredentials.source"]


def test_endpoint_overrides_need_the_rule_and_an_allowed_host() -> None:
    denied = project_violations(TenancyPolicy(), "team-a", spec(
        {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "k"}}},
        aws={"endpointUrl": "https://attacker.example:443"}))
    assert fields(denied) == ["spec.aws.endpointUrl"] and "endpoint overrides are not allowed here" in denied[0].message

    policy = TenancyPolicy(endpoint_hosts=["localstack.localstack.svc:4566", "*.moto.internal"],
                           rules=[TenancyRule(name="dev", endpoint_overrides=True)])
    keyed = {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "k"}}}
    def endpoint(url: str) -> list[Any]:
        return project_violations(policy, "dev", spec(keyed, aws={"endpointUrl": url}))

    assert endpoint("http://localstack.localstack.svc:4566") == []
    assert endpoint("http://a.moto.internal:5000") == []
    wrong_port = endpoint("http://localstack.localstack.svc:80")
    assert "host localstack.localstack.svc:80 is not on the operator's endpoint allow-list" in wrong_port[0].message


def test_namespace_selectors_and_first_match() -> None:
    policy = TenancyPolicy(rules=[
        TenancyRule(name="labelled", namespace_selector=LabelSelector.model_validate(
            {"matchLabels": {"tenant": "payments"}, "matchExpressions": [{"key": "tier", "operator": "NotIn",
                                                                          "values": ["sandbox"]}]}),
            credential_sources=list(CredentialsSource)),
        TenancyRule(name="everyone-else", namespaces=["*"]),
    ])
    assert policy.uses_labels
    assert policy.rule_for("a", {"tenant": "payments"}).name == "labelled"
    assert policy.rule_for("a", {"tenant": "payments", "tier": "sandbox"}).name == "everyone-else"
    assert policy.rule_for("a", {}).name == "everyone-else"


def test_cross_namespace_references_need_a_grant() -> None:
    project = spec({"name": "test"}, allowedNamespaces=["web-*"],
                   allowedNamespaceSelector={"matchLabels": {"shop": "yes"}})
    assert reference_grant("shop", "p", project, "shop").allowed
    assert reference_grant("shop", "p", project, "web-frontend").allowed
    assert reference_grant("shop", "p", project, "other", {"shop": "yes"}).allowed
    refused = reference_grant("shop", "p", project, "other", {})
    assert not refused.allowed
    assert "does not grant namespace 'other'" in refused.message and "spec.allowedNamespaces" in refused.message
    assert not reference_grant("shop", "p", spec({"name": "test"}), "web-frontend").allowed


def test_the_policy_file_is_parsed_reloaded_and_a_bad_edit_keeps_the_last_good(tmp_path: Path) -> None:
    path = tmp_path / "tenancy.yaml"
    path.write_text("apiVersion: devops.fractary.io/v1alpha1\nkind: TenancyPolicy\nrules:\n"
                    "  - name: one\n    namespaces: [a]\n    credentialSources: [ambient]\n")
    source = PolicySource(path=str(path))
    assert source.current().rule_for("a").name == "one"

    path.write_text("rules:\n  - name: two\n    namespaces: [a]\n    credentialSources: [ambient, irsa]\n")
    assert source.current().rule_for("a").name == "two"

    path.write_text("rules: [ {name: three, credentialSources: [magic]} ]\n")  # invalid: keeps "two"
    assert source.current().rule_for("a").name == "two"


@pytest.mark.parametrize(("text", "message"), [
    ("rules: {}", "rules"),
    ("kind: Secret", "kind must be TenancyPolicy"),
    ("rules:\n  - name: x\n    credentialSources: [magic]", "credentialSources"),
    ("[1, 2]", "must be a mapping"),
    ("rules: [\n", "not valid YAML"),
])
def test_a_bad_policy_file_is_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(TenancyPolicyError, match=message):
        parse_policy(text, "tenancy.yaml")


def test_a_missing_policy_file_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(TenancyPolicyError, match="cannot be read"):
        PolicySource(path=str(tmp_path / "absent.yaml"))
