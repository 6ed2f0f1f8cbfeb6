"""InfraDeployment and PermissionRequest models: realistic objects round-trip, bad ones are refused."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from devops_operator.api import infradeployment, permissionrequest
from devops_operator.api.common import Model
from devops_operator.api.infradeployment import (
    ApprovalMode,
    InfraDeploymentPhase,
    InfraDeploymentSpec,
    InfraDeploymentStatus,
)
from devops_operator.api.permissionrequest import PermissionRequestSpec, PermissionRequestStatus

ACCESS_DENIED = (
    "Error: creating S3 Bucket (shop-core-test-assets): operation error S3: CreateBucket, https response "
    "error StatusCode: 403, RequestID: 8XK3Q2, HostID: abc=, api error AccessDenied: User: "
    "arn:aws:sts::123456789012:assumed-role/shop-test-deploy/runner is not authorized to perform: "
    's3:CreateBucket on resource: "arn:aws:s3:::shop-core-test-assets" because no identity-based policy '
    "allows the s3:CreateBucket action"
)

INFRA_SPEC: dict[str, Any] = {
    "projectRef": {"name": "shop", "namespace": "platform"},
    "environment": "test",
    "source": {
        "git": {
            "url": "https://github.com/acme/shop-infra.git",
            "ref": {"tag": "v1.4.0"},
            "path": "stacks/api",
            "credentialsSecretRef": {"name": "git-credentials"},
        }
    },
    "interval": "5m",
    "variables": {"instance_count": 2, "enable_waf": True, "tags": {"team": "payments"}, "azs": ["a", "b"]},
    "varsFrom": [
        {"kind": "Secret", "name": "db-credentials", "keys": ["db_password"], "optional": False},
        {"kind": "ConfigMap", "name": "common-vars", "optional": True},
    ],
    "varFiles": ["env/test.tfvars"],
    "approval": {"mode": "manual", "planId": "1a2b3c4d5e6f7081", "approvedBy": "alice@example.com",
                 "expiresAfter": "24h"},
    "tests": {
        "pre": {
            "failOn": ["CRITICAL"],
            "checkov": {"enabled": True, "skipChecks": ["CKV_AWS_18", "CKV2_AWS_6"]},
            "costEstimate": {"lambdaUsage": {"monthlyRequests": 5_000_000, "averageDurationMs": 120}},
            "naming": {"severity": "LOW"},
            "requiredTags": {"tags": ["project", "environment", "team"]},
        },
        "post": {"verify": True, "healthCheckRef": {"name": "api-health"}, "timeout": "15m"},
        "keepReports": 10,
    },
    "driftDetection": {"enabled": True, "interval": "6h", "autoCorrect": False},
    "dependsOn": [{"name": "network"}, {"name": "shared-kms", "namespace": "platform"}],
    "suspend": False,
    "destroyOnDelete": True,
    "outputs": {"configMapName": "api-outputs", "secretName": "api-sensitive-outputs"},
    "runner": {
        "image": "ghcr.io/fractary/devops-operator:0.1.0",
        "resources": {"cpu": "1", "memory": "1Gi", "ephemeralStorage": "4Gi"},
        "serviceAccountName": "shop-runner",
        "activeDeadlineSeconds": 1800,
        "env": [
            {"name": "TF_LOG", "value": "INFO"},
            {"name": "TF_TOKEN_app_terraform_io", "secretKeyRef": {"name": "tfc", "key": "token"}},
        ],
    },
    "retry": {"maxAttempts": 5, "backoff": "1m"},
    "terraformVersion": ">= 1.5, < 2.0",
    "backend": {"type": "s3", "s3": {"bucket": "acme-tfstate", "dynamodbTable": "tf-locks"}},
}

INFRA_STATUS: dict[str, Any] = {
    "observedGeneration": 3,
    "phase": "AwaitingApproval",
    "message": "plan 3-1a2b3c4d5e waits for approval",
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "AwaitingApproval",
            "message": "approve plan 3-1a2b3c4d5e",
        },
        {"type": "Reconciling", "status": "True", "reason": "AwaitingApproval"},
    ],
    "sourceRevision": "v1.4.0@9f1c2e7",
    "plan": {
        "id": "3-1a2b3c4d5e",
        "digest": "1a2b3c4d5e6f" + "0" * 52,
        "generation": 3,
        "sourceRevision": "v1.4.0@9f1c2e7",
        "add": 2,
        "change": 1,
        "destroy": 0,
        "replace": 1,
        "summary": [
            {"address": "aws_s3_bucket.assets", "action": "create"},
            {"address": "aws_lambda_function.api", "action": "update"},
            {"address": "aws_iam_role_policy.api", "action": "replace"},
        ],
        "createdAt": "2026-11-21T10:00:00Z",
        "artifactSecret": "api-plan-3-1a2b3c4d5e",
        "artifactChunks": 2,
    },
    "approval": {"state": "Pending", "digest": "1a2b3c4d5e6f7081", "requestedAt": "2026-11-21T10:01:00Z",
                 "expiresAt": "2026-11-22T10:01:00Z", "message": "waiting for approval of plan 1a2b3c4d5e6f7081"},
    "lastAppliedPlanId": "2-9e8d7c6b5a",
    "lastAppliedRevision": "v1.3.2@77aa001",
    "jobs": {
        "lastFailed": {
            "name": "api-apply-2",
            "step": "apply",
            "reason": "OOMKilled",
            "exitCode": 137,
            "logSecret": "api-apply-2-result",
            "at": "2026-11-20T09:00:00Z",
        }
    },
    "lastError": {
        "category": "permission",
        "issueId": "ISS-3f2a",
        "message": "AccessDenied: s3:CreateBucket",
        "solution": "Grant s3:CreateBucket on the bucket to the deploy role",
        "confidence": "high",
        "permissionRequest": "api-s3-createbucket",
        "at": "2026-11-20T09:00:00Z",
    },
    "tests": {
        "status": "WARN",
        "gatePassed": True,
        "planId": "3-1a2b3c4d5e",
        "counts": {"critical": 0, "high": 0, "medium": 2, "low": 1},
        "checks": [
            {"name": "checkov", "status": "WARN", "findings": 2},
            {"name": "costEstimate", "status": "PASS", "message": "$41.20/month, threshold $500"},
        ],
        "estimatedMonthlyCost": 41.2,
        "unpricedResources": 1,
        "reportConfigMap": "api-tests-3-1a2b3c4d5e",
    },
    "drift": {"detected": True, "count": 1, "lastChecked": "x",
              "resources": [{"address": "aws_s3_bucket.assets", "action": "update", "attributes": ["tags"]}]},
    "outputs": {"configMapName": "api-outputs", "names": ["api_url"], "sensitiveNames": ["db_password"]},
    "lock": {"holderJob": "api-apply-2", "holderPod": "api-apply-2-xyz", "since": "t", "stale": True},
    "registry": {
        "configMapName": "shop-test-registry",
        "resourceCount": 12,
        "conflicts": [{"resourceId": "arn:aws:s3:::shared", "deployment": "shop/other"}],
    },
    "resourceCount": 12,
}

PERMISSION_SPEC: dict[str, Any] = {
    "projectRef": {"name": "shop"},
    "environment": "test",
    "deploymentRef": {"name": "api"},
    "errorMessage": ACCESS_DENIED,
    "actions": ["s3:CreateBucket"],
    "resources": ["arn:aws:s3:::shop-core-test-assets"],
    "principalArn": "arn:aws:sts::123456789012:assumed-role/shop-test-deploy/runner",
    "condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
    "approval": {"approved": True, "denied": False, "statementDigest": "0f1e2d3c4b5a69788796a5b4",
                 "approvedBy": "alice@example.com"},
    "reason": "the api stack creates its assets bucket",
}

PERMISSION_STATUS: dict[str, Any] = {
    "phase": "Granted",
    "errorCode": "AccessDenied",
    "proposedStatement": {
        "sid": "ApiS3CreateBucket",
        "effect": "Allow",
        "action": ["s3:CreateBucket"],
        "resource": ["arn:aws:s3:::shop-core-test-assets"],
    },
    "policyDocument": '{"Version": "2012-10-17", "Statement": []}',
    "policyName": "devops-operator-api-s3-createbucket",
    "roleName": "shop-test-deploy",
    "approval": {"state": "Approved", "digest": "0f1e2d3c4b5a69788796a5b4", "approvedBy": "alice@example.com",
                 "approvedAt": "2026-11-21T10:04:00Z"},
    "grantedAt": "2026-11-21T10:05:00Z",
    "auditEntryId": "iam-000042",
}

# Maps whose keys are the user's (variable names, file names, IAM keys), not field names.
FREE_FORM = {"variables", "inline", "condition"}


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield key
            if key not in FREE_FORM:
                yield from _keys(sub)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _is_subset(small: Any, big: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _is_subset(v, big[k]) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(small) == len(big) and all(map(_is_subset, small, big))
    return bool(small == big)


def _errors(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of base with the dotted path set (None deletes it)."""
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return data


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (InfraDeploymentSpec, INFRA_SPEC),
        (InfraDeploymentStatus, INFRA_STATUS),
        (PermissionRequestSpec, PERMISSION_SPEC),
        (PermissionRequestStatus, PERMISSION_STATUS),
    ],
    ids=["idep-spec", "idep-status", "preq-spec", "preq-status"],
)
def test_realistic_objects_round_trip(model: type[Model], data: dict[str, Any]) -> None:
    parsed = model.model_validate(data)
    wire = parsed.to_wire()
    assert _is_subset(data, wire), "everything written survives, in the same shape"
    assert model.model_validate(wire) == parsed
    assert model.model_validate(wire).to_wire() == wire


def test_wire_format_is_camel_case() -> None:
    wire = InfraDeploymentSpec.model_validate(INFRA_SPEC).to_wire()
    keys = set(_keys(wire))
    assert {"projectRef", "varsFrom", "varFiles", "driftDetection", "autoCorrect", "destroyOnDelete"} <= keys
    assert {"credentialsSecretRef", "keepReports", "failOn", "lambdaUsage", "monthlyRequests"} <= keys
    assert {"activeDeadlineSeconds", "secretKeyRef", "terraformVersion", "dynamodbTable"} <= keys
    assert not [k for k in keys if "_" in k], "no snake_case field names on the wire"
    # User-owned maps keep their keys as written.
    assert wire["variables"]["instance_count"] == 2
    status = InfraDeploymentStatus.model_validate(INFRA_STATUS).to_wire()
    assert not [k for k in _keys(status) if "_" in k]
    assert status["plan"]["artifactSecret"] == "api-plan-3-1a2b3c4d5e"
    preq = PermissionRequestSpec.model_validate(PERMISSION_SPEC).to_wire()
    assert {"errorMessage", "principalArn", "deploymentRef", "approval"} <= set(preq)
    assert preq["approval"]["statementDigest"] == "0f1e2d3c4b5a69788796a5b4"


def test_python_names_populate_too() -> None:
    spec = InfraDeploymentSpec(
        project_ref={"name": "shop"},
        environment="dev",
        source={"inline": {"main.tf": 'resource "null_resource" "x" {}'}},
        destroy_on_delete=True,
    )
    assert spec.to_wire()["destroyOnDelete"] is True
    assert spec.source.inline == {"main.tf": 'resource "null_resource" "x" {}'}


def test_defaults() -> None:
    spec = InfraDeploymentSpec.model_validate(
        {
            "projectRef": {"name": "shop"},
            "environment": "test",
            "source": {"configMapRef": {"name": "module"}},
        }
    )
    assert spec.approval.mode == ApprovalMode.MANUAL == "manual"
    assert spec.approval.plan_id is None
    assert spec.tests.pre.fail_on == ["CRITICAL", "HIGH"]
    assert spec.tests.pre.checkov.enabled and spec.tests.pre.cost_estimate.enabled
    assert spec.tests.post.verify is True
    assert spec.tests.keep_reports == 5
    assert spec.drift_detection.enabled and spec.drift_detection.interval == "1h"
    assert not spec.drift_detection.auto_correct
    assert spec.destroy_on_delete is False and spec.suspend is False
    assert spec.source.config_map_ref is not None and spec.source.config_map_ref.path == "."
    assert spec.outputs.secret_name is None
    assert spec.backend is None
    preq = PermissionRequestSpec.model_validate(
        {"projectRef": {"name": "shop"}, "environment": "prod", "errorMessage": ACCESS_DENIED}
    )
    assert preq.approval.approved is False and preq.approval.denied is False and preq.actions == []


def test_status_phases_and_extra_status_fields() -> None:
    assert [p.value for p in InfraDeploymentPhase] == [
        "Pending", "WaitingForDependencies", "Planning", "Testing", "AwaitingApproval", "WaitingForWindow",
        "Suspended", "Applying", "Verifying", "Ready", "Failed", "Stalled", "Destroying", "DeletionBlocked",
    ]  # fmt: skip
    # StatusBase allows fields a newer operator wrote; spec models never do.
    status = InfraDeploymentStatus.model_validate({**INFRA_STATUS, "futureField": {"x": 1}})
    assert status.to_wire()["futureField"] == {"x": 1}
    assert _errors(InfraDeploymentStatus, {"phase": "Sleeping"})[0][0] == ("phase",)
    assert _errors(PermissionRequestStatus, {"phase": "Approved"})[0][0] == ("phase",)


def test_outputs_status_holds_names_never_values() -> None:
    fields = set(infradeployment.OutputsStatus.model_fields)
    assert fields == {"config_map_name", "secret_name", "names", "names_truncated", "sensitive_names",
                      "sensitive_names_truncated"}
    with pytest.raises(ValidationError):
        infradeployment.OutputsStatus.model_validate({"values": {"db_password": "hunter2"}})


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("path", "value", "loc"),
    [
        ("destroyOnDeletion", True, ("destroyOnDeletion",)),
        ("approval.planID", "3-abc", ("approval", "planID")),
        ("source.git.branch", "main", ("source", "git", "branch")),
        ("tests.pre.checkov.skip", ["CKV_AWS_1"], ("tests", "pre", "checkov", "skip")),
    ],
)
def test_unknown_fields_are_refused(path: str, value: Any, loc: tuple[str, ...]) -> None:
    errors = _errors(InfraDeploymentSpec, _with(INFRA_SPEC, path, value))
    assert (loc, "Extra inputs are not permitted") in errors


def test_unknown_permission_fields_are_refused() -> None:
    errors = _errors(PermissionRequestSpec, {**PERMISSION_SPEC, "autoApprove": True})
    assert (("autoApprove",), "Extra inputs are not permitted") in errors


@pytest.mark.parametrize(
    ("path", "value", "loc", "message"),
    [
        ("driftDetection.interval", "1 hour", ("driftDetection", "interval"), "should match pattern"),
        ("interval", "10", ("interval",), "should match pattern"),
        ("tests.post.timeout", "-5m", ("tests", "post", "timeout"), "should match pattern"),
        ("approval.mode", "yolo", ("approval", "mode"), "'auto', 'manual' or 'non-destructive'"),
        ("approval.planId", "Plan One", ("approval", "planId"), "should match pattern"),
        ("environment", "Prod", ("environment",), "should match pattern"),
        ("tests.pre.failOn", ["SEVERE"], ("tests", "pre", "failOn", 0), "CRITICAL"),
        ("tests.keepReports", 0, ("tests", "keepReports"), "greater than or equal to 1"),
        ("runner.resources.memory", "lots", ("runner", "resources", "memory"), "should match pattern"),
        ("runner.activeDeadlineSeconds", 5, ("runner", "activeDeadlineSeconds"), "greater than or equal"),
        ("terraformVersion", "latest", ("terraformVersion",), "should match pattern"),
        ("varsFrom", [{"kind": "Vault", "name": "x"}], ("varsFrom", 0, "kind"), "'ConfigMap' or 'Secret'"),
        ("source.git.url", "github.com/acme/x", ("source", "git", "url"), "should match pattern"),
        (
            "source.git.ref",
            {"commit": "not-a-sha"},
            ("source", "git", "ref", "commit"),
            "should match pattern",
        ),
        ("source.git.path", "../../etc", ("source", "git", "path"), "'..'"),
        ("source.git.path", "/abs", ("source", "git", "path"), "should match pattern"),
        ("varFiles", ["../secrets.tfvars"], ("varFiles",), "'..'"),
        ("projectRef", None, ("projectRef",), "Field required"),
        ("source", None, ("source",), "Field required"),
    ],
)
def test_invalid_values_are_refused_by_field(
    path: str, value: Any, loc: tuple[str | int, ...], message: str
) -> None:
    errors = _errors(InfraDeploymentSpec, _with(INFRA_SPEC, path, value))
    assert any(e_loc == loc and message in msg for e_loc, msg in errors), errors


@pytest.mark.parametrize(
    ("source", "got"),
    [
        ({"git": {"url": "https://x/y.git"}, "inline": {"main.tf": ""}}, "git, inline"),
        ({"git": {"url": "https://x/y.git"}, "configMapRef": {"name": "m"}}, "git, configMapRef"),
        ({}, "none"),
    ],
)
def test_exactly_one_source(source: dict[str, Any], got: str) -> None:
    errors = _errors(InfraDeploymentSpec, {**INFRA_SPEC, "source": source})
    assert errors == [
        (("source",), f"Value error, set exactly one of git, configMapRef, inline or sourceRef (got {got})")
    ]


def test_source_details_are_checked() -> None:
    both_refs = _with(INFRA_SPEC, "source.git.ref", {"branch": "main", "tag": "v1"})
    [(loc, msg)] = _errors(InfraDeploymentSpec, both_refs)
    assert loc == ("source", "git", "ref") and "at most one of branch, tag or commit" in msg
    for bad in ("/etc/passwd", "modules/../../x.tf", "modules/"):
        [(loc, msg)] = _errors(InfraDeploymentSpec, {**INFRA_SPEC, "source": {"inline": {bad: "x"}}})
        assert loc == ("source", "inline")
    [(loc, _)] = _errors(InfraDeploymentSpec, {**INFRA_SPEC, "source": {"inline": {}}})
    assert loc == ("source", "inline")


def test_runner_env_needs_exactly_one_value() -> None:
    both = [{"name": "X", "value": "1", "secretKeyRef": {"name": "s", "key": "k"}}]
    [(loc, msg)] = _errors(InfraDeploymentSpec, _with(INFRA_SPEC, "runner.env", both))
    assert loc == ("runner", "env", 0) and "exactly one of value or secretKeyRef" in msg
    [(loc, _)] = _errors(InfraDeploymentSpec, _with(INFRA_SPEC, "runner.env", [{"name": "X"}]))
    assert loc == ("runner", "env", 0)


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"actions": ["*"]}, ("actions", 0), "should match pattern"),
        ({"actions": ["CreateBucket"]}, ("actions", 0), "should match pattern"),
        ({"resources": ["shop-core-test-assets"]}, ("resources", 0), "should match pattern"),
        ({"principalArn": "shop-test-deploy"}, ("principalArn",), "should match pattern"),
        ({"policyName": "has spaces"}, ("policyName",), "should match pattern"),
        ({"environment": "Production"}, ("environment",), "should match pattern"),
        ({"approval": {"approved": True, "denied": True, "statementDigest": "abcdef123456"}}, ("approval",),
         "approved and denied cannot both be true"),
        ({"approval": {"approved": True}}, ("approval",), "statementDigest is required"),
        ({"errorMessage": None, "actions": []}, (), "set errorMessage or at least one action"),
        ({"approval": {"approved": "maybe"}}, ("approval", "approved"), "valid boolean"),
    ],
)
def test_invalid_permission_requests_are_refused(
    change: dict[str, Any], loc: tuple[str | int, ...], message: str
) -> None:
    data = {k: v for k, v in {**PERMISSION_SPEC, **change}.items() if v is not None}
    errors = _errors(PermissionRequestSpec, data)
    assert any(e_loc == loc and message in msg for e_loc, msg in errors), errors


def test_permission_request_from_the_error_alone_is_valid() -> None:
    spec = PermissionRequestSpec.model_validate(
        {"projectRef": {"name": "shop"}, "environment": "test", "errorMessage": ACCESS_DENIED}
    )
    assert spec.error_message == ACCESS_DENIED
    wildcard = PermissionRequestSpec.model_validate(
        {**PERMISSION_SPEC, "actions": ["s3:Get*"], "resources": ["*"]}
    )
    assert wildcard.actions == ["s3:Get*"]


# ---------------------------------------------------------------- documentation


def _models(module: ModuleType) -> list[type[Model]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Model) and obj.__module__ == module.__name__
    ]


@pytest.mark.parametrize("module", [infradeployment, permissionrequest], ids=lambda m: m.__name__)
def test_every_field_is_described(module: ModuleType) -> None:
    """Descriptions become the CRD reference docs (`kubectl explain`)."""
    undocumented = [
        f"{model.__name__}.{name}"
        for model in _models(module)
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undocumented == []


# ---------------------------------------------------------------- shared vocabulary


def test_every_environment_name_has_the_same_constraints() -> None:
    """One EnvironmentName: what DevOpsProject accepts as a name is what every other kind accepts."""
    from devops_operator.api import ALL_KINDS
    from devops_operator.api.common import ENVIRONMENT_PATTERN
    from devops_operator.api.crdgen import render_crd

    expected = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": ENVIRONMENT_PATTERN}
    found = {}
    for kind in ALL_KINDS:
        spec = render_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        if "environment" in spec["properties"]:
            found[kind.kind] = spec["properties"]["environment"]
    project = render_crd(next(k for k in ALL_KINDS if k.kind == "DevOpsProject"))
    spec = project["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    found["DevOpsProject"] = spec["properties"]["environments"]["items"]["properties"]["name"]

    assert set(found) == {kind.kind for kind in ALL_KINDS}
    for kind, schema in found.items():
        assert {key: schema.get(key) for key in expected} == expected, kind
        assert schema["description"], kind
