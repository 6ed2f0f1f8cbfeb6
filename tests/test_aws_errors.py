"""Classification of AWS errors into issue-log categories with a proposed fix."""

from __future__ import annotations

import socket
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from devops_operator.api.common import ErrorCategory
from devops_operator.aws import errors
from devops_operator.aws.errors import (
    AccessDenied,
    AwsConfigurationError,
    CredentialsError,
    classify,
    is_throttling,
    parse_access_denied,
    policy_holder_arn,
)

ROLE = "arn:aws:sts::111122223333:assumed-role/shop-deployer/devops-operator"
DEPLOYER = "arn:aws:iam::111122223333:role/shop-deployer"  # what a grant to ROLE is attached to


def client_error(code: str, message: str, operation: str = "DoThing", status: int = 400) -> ClientError:
    """A ClientError shaped exactly like botocore builds it from an error response."""
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": status, "RetryAttempts": 0},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("code", "status", "category", "retryable"),
    [
        ("AccessDenied", 403, ErrorCategory.PERMISSION, False),
        ("AccessDeniedException", 400, ErrorCategory.PERMISSION, False),
        ("UnauthorizedOperation", 403, ErrorCategory.PERMISSION, False),
        ("Throttling", 400, ErrorCategory.THROTTLING, True),
        ("ThrottlingException", 400, ErrorCategory.THROTTLING, True),
        ("TooManyRequestsException", 429, ErrorCategory.THROTTLING, True),
        ("RequestLimitExceeded", 503, ErrorCategory.THROTTLING, True),
        ("SlowDown", 503, ErrorCategory.THROTTLING, True),
        ("ResourceNotFoundException", 400, ErrorCategory.RESOURCE, False),
        ("NoSuchEntity", 404, ErrorCategory.RESOURCE, False),
        ("NoSuchBucket", 404, ErrorCategory.RESOURCE, False),
        ("InvalidInstanceID.NotFound", 400, ErrorCategory.RESOURCE, False),
        ("InvalidVpcID.NotFound", 400, ErrorCategory.RESOURCE, False),
        ("LimitExceededException", 400, ErrorCategory.QUOTA, False),
        ("ServiceQuotaExceededException", 402, ErrorCategory.QUOTA, False),
        ("VcpuLimitExceeded", 400, ErrorCategory.QUOTA, False),
        ("InvalidClientTokenId", 403, ErrorCategory.CREDENTIALS, False),
        ("ExpiredToken", 400, ErrorCategory.CREDENTIALS, False),
        ("SignatureDoesNotMatch", 403, ErrorCategory.CREDENTIALS, False),
        ("UnrecognizedClientException", 400, ErrorCategory.CREDENTIALS, False),
        ("RequestTimeTooSkewed", 403, ErrorCategory.CONFIG, False),  # the node's clock, not the keys
        ("ValidationException", 400, ErrorCategory.CONFIG, False),
        ("MalformedPolicyDocument", 400, ErrorCategory.CONFIG, False),
        ("InvalidAMIID.Malformed", 400, ErrorCategory.CONFIG, False),
        ("BucketAlreadyExists", 409, ErrorCategory.STATE, False),
        ("EntityAlreadyExists", 409, ErrorCategory.STATE, False),
        ("ResourceConflictException", 409, ErrorCategory.STATE, True),
        ("IncorrectInstanceState", 400, ErrorCategory.STATE, True),
        ("DependencyViolation", 400, ErrorCategory.DEPENDENCY, False),
        ("DeleteConflict", 409, ErrorCategory.DEPENDENCY, False),
        ("InternalError", 500, ErrorCategory.DEPENDENCY, True),
        ("ServiceUnavailable", 503, ErrorCategory.DEPENDENCY, True),
        ("InsufficientInstanceCapacity", 500, ErrorCategory.DEPENDENCY, True),
        ("SomethingNew", 503, ErrorCategory.DEPENDENCY, True),
        ("SomethingNew", 403, ErrorCategory.PERMISSION, False),
        ("SomethingNew", 400, ErrorCategory.UNKNOWN, False),
    ],
)
def test_error_codes_map_to_categories(
    code: str, status: int, category: ErrorCategory, retryable: bool
) -> None:
    failure = classify(client_error(code, "message from AWS", status=status))

    assert (failure.category, failure.retryable, failure.code) == (category, retryable, code)
    assert failure.http_status == status
    assert failure.request_id == "req-1"
    assert failure.fix and "{" not in failure.fix


def test_access_denied_names_action_resource_and_principal() -> None:
    message = (
        f"User: {ROLE} is not authorized to perform: s3:GetObject on resource: "
        "arn:aws:s3:::shop-prod-assets/index.html because no identity-based policy allows the "
        "s3:GetObject action"
    )
    failure = classify(client_error("AccessDenied", message, "GetObject", 403))

    assert failure.action == "s3:GetObject"
    assert failure.resource == "arn:aws:s3:::shop-prod-assets/index.html"
    assert failure.principal == ROLE
    assert failure.grantee == DEPLOYER
    assert failure.fix.startswith(f"Grant s3:GetObject on arn:aws:s3:::shop-prod-assets/index.html to {DEPLOYER} ")
    assert failure.summary.startswith("permission: AccessDenied: User: ")


def test_ec2_unauthorized_operation_message() -> None:
    message = (
        "You are not authorized to perform this operation. User: "
        f"{ROLE} is not authorized to perform: ec2:RunInstances on resource: "
        "arn:aws:ec2:us-east-1:111122223333:instance/* because no identity-based policy allows the "
        "ec2:RunInstances action. Encoded authorization failure message: 4GIOHlTkIaWHQD0Q0m6XSnuUMCm"
    )
    failure = classify(client_error("UnauthorizedOperation", message, "RunInstances", 403))

    assert failure.category is ErrorCategory.PERMISSION
    assert failure.action == "ec2:RunInstances"
    assert failure.resource == "arn:aws:ec2:us-east-1:111122223333:instance/*"


def test_access_denied_without_details_still_proposes_a_grant() -> None:
    failure = classify(client_error("AccessDenied", "Access Denied", "ListBuckets", 403))

    assert failure.action is None
    assert "Grant the denied action on the resource to the operator's identity" in failure.fix


def test_explicit_deny_is_not_fixed_by_a_grant() -> None:
    message = (
        f"User: {ROLE} is not authorized to perform: iam:CreateUser on resource: "
        "arn:aws:iam::111122223333:user/ci with an explicit deny in a service control policy"
    )
    failure = classify(client_error("AccessDenied", message, "CreateUser", 403))

    assert failure.category is ErrorCategory.PERMISSION
    assert "explicit Deny (service control policy) blocks iam:CreateUser" in failure.fix
    assert "cannot override" in failure.fix


def test_denied_assume_role_points_at_the_trust_policy() -> None:
    message = (
        "User: arn:aws:sts::111122223333:assumed-role/operator-pod/botocore-session-1 is not authorized "
        "to perform: sts:AssumeRole on resource: arn:aws:iam::444455556666:role/shop-deployer"
    )
    failure = classify(client_error("AccessDenied", message, "AssumeRole", 403))

    assert "trust policy" in failure.fix
    assert failure.resource == "arn:aws:iam::444455556666:role/shop-deployer"


def test_throttling_fix_names_the_operation() -> None:
    failure = classify(client_error("Throttling", "Rate exceeded", "GetMetricData"))

    assert is_throttling(client_error("ThrottlingException", "Rate exceeded"))
    assert "AWS throttled GetMetricData" in failure.fix
    assert "adaptive" in failure.fix


@pytest.mark.parametrize(
    ("exc", "category", "retryable"),
    [
        (
            EndpointConnectionError(endpoint_url="https://monitoring.eu-west-1.amazonaws.com/"),
            "network",
            True,
        ),
        (ConnectTimeoutError(endpoint_url="https://sts.amazonaws.com/"), "network", True),
        (ReadTimeoutError(endpoint_url="https://logs.us-east-1.amazonaws.com/"), "network", True),
        (NoCredentialsError(), "credentials", False),
        (ParamValidationError(report="Missing required parameter in input: Bucket"), "config", False),
        (CredentialsError("Secret team-a/aws-keys was not found: create it"), "credentials", False),
        (AwsConfigurationError("Environment 'qa' is not defined"), "config", False),
        (ValueError("boom"), "unknown", False),
    ],
)
def test_exceptions_without_codes(exc: BaseException, category: str, retryable: bool) -> None:
    failure = classify(exc)

    assert (failure.category, failure.retryable) == (category, retryable)
    assert failure.code == type(exc).__name__
    assert failure.message == str(exc)
    assert failure.fix


def test_configuration_errors_propose_their_own_message() -> None:
    failure = classify(CredentialsError("Secret team-a/aws-keys was not found: create it"))

    assert failure.fix == "Secret team-a/aws-keys was not found: create it"


def test_real_connection_refused_is_a_network_failure() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sts = boto3.client(
        "sts",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1),
    )

    with pytest.raises(EndpointConnectionError) as caught:
        sts.get_caller_identity()

    failure = classify(caught.value)
    assert (failure.category, failure.retryable) == (ErrorCategory.NETWORK, True)
    assert "endpointUrl" in failure.fix


def test_code_table_lists_each_code_once() -> None:
    codes = [code for _, listed in errors._CODE_TABLE for code in listed.split()]

    assert len(codes) == len(set(codes))


# -- AccessDenied messages as AWS and Terraform write them -----------------------------------

S3_QUOTED = (
    "User: arn:aws:sts::123456789012:assumed-role/deploy/session is not authorized to perform: "
    's3:PutBucketTagging on resource: "arn:aws:s3:::my-bucket" because no identity-based policy allows '
    "the s3:PutBucketTagging action"
)
TERRAFORM_WRAPPED = (
    "Error: creating IAM Role (shop-api): operation error IAM: CreateRole, https response error "
    "StatusCode: 403, RequestID: 4c2f9e1a-0b1d-4a8e-9f3c-2d7e6a5b4c3d, api error AccessDenied: User:\n"
    "│ arn:aws:sts::123456789012:assumed-role/deploy/1712345678901 is not authorized to perform:\n"
    "│ iam:CreateRole on resource: arn:aws:iam::123456789012:role/shop-api because no identity-based\n"
    "│ policy allows the iam:CreateRole action\n"
    "│ \n"
    '│   with aws_iam_role.api,\n│   on main.tf line 12, in resource "aws_iam_role" "api":'
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            S3_QUOTED,
            AccessDenied(
                action="s3:PutBucketTagging",
                resource="arn:aws:s3:::my-bucket",
                principal="arn:aws:sts::123456789012:assumed-role/deploy/session",
                grantee="arn:aws:iam::123456789012:role/deploy",
                missing_allow="identity-based policy",
            ),
            id="s3-quoted-arn",
        ),
        pytest.param(
            'User: arn:aws:iam::123456789012:user/ci is not authorized to perform: s3:GetObject on resource: '
            '"arn:aws:s3:::shop-assets/reports/Q1 summary.pdf" because no identity-based policy allows the '
            "s3:GetObject action",
            AccessDenied(
                action="s3:GetObject",
                resource="arn:aws:s3:::shop-assets/reports/Q1 summary.pdf",  # a quoted ARN may hold spaces
                principal="arn:aws:iam::123456789012:user/ci",
                grantee="arn:aws:iam::123456789012:user/ci",
                missing_allow="identity-based policy",
            ),
            id="s3-quoted-key-with-space",
        ),
        pytest.param(
            TERRAFORM_WRAPPED,
            AccessDenied(
                action="iam:CreateRole",
                resource="arn:aws:iam::123456789012:role/shop-api",
                principal="arn:aws:sts::123456789012:assumed-role/deploy/1712345678901",
                grantee="arn:aws:iam::123456789012:role/deploy",
                missing_allow="identity-based policy",
            ),
            id="terraform-wrapped",
        ),
        pytest.param(
            "AccessDeniedException: User: arn:aws:sts::505974653433:assumed-role/PlatformAccess/aws-go-sdk-1725"
            " is not authorized to perform: iam:PassRole on resource:\n│ arn:aws:iam::505974653433:role/"
            "chatbot-channel with an explicit deny",
            AccessDenied(
                action="iam:PassRole",
                resource="arn:aws:iam::505974653433:role/chatbot-channel",
                principal="arn:aws:sts::505974653433:assumed-role/PlatformAccess/aws-go-sdk-1725",
                grantee="arn:aws:iam::505974653433:role/PlatformAccess",
                explicit_deny=True,
            ),
            id="iam-passrole-explicit-deny",
        ),
        pytest.param(
            f"User: {ROLE} is not authorized to perform: iam:CreateUser on resource: "
            "arn:aws:iam::111122223333:user/ci with an explicit deny in a service control policy: "
            "arn:aws:organizations::999988887777:policy/o-a1b2c3d4e5/service_control_policy/p-f6g7h8i9",
            AccessDenied(
                action="iam:CreateUser",
                resource="arn:aws:iam::111122223333:user/ci",
                principal=ROLE,
                grantee=DEPLOYER,
                explicit_deny=True,
                deny_policy="service control policy",
                deny_policy_arn="arn:aws:organizations::999988887777:policy/o-a1b2c3d4e5/service_control_policy/"
                "p-f6g7h8i9",
            ),
            id="scp-with-policy-arn",
        ),
        pytest.param(
            "User: arn:aws:iam::111122223333:user/cryptomatic is not authorized to perform: kms:DescribeKey on "
            "resource: arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no "
            "resource-based policy allows the kms:DescribeKey action.",
            AccessDenied(
                action="kms:DescribeKey",
                resource="arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                principal="arn:aws:iam::111122223333:user/cryptomatic",
                grantee="arn:aws:iam::111122223333:user/cryptomatic",
                missing_allow="resource-based policy",
            ),
            id="kms-resource-policy",
        ),
        pytest.param(
            f"User: {ROLE} is not authorized to perform: kms:Decrypt because no identity-based policy allows the "
            "kms:Decrypt action",
            AccessDenied(
                action="kms:Decrypt", principal=ROLE, grantee=DEPLOYER, missing_allow="identity-based policy"
            ),
            id="kms-without-resource",
        ),
        pytest.param(
            "You are not authorized to perform this operation. Encoded authorization failure message: "
            "p1EyykaD2fI3csh_sf_WvdHF_s5IYypR-3EcbaGMemY_lrLJhI9yhfwzJxUfir6yM4mJMUmXALL",
            AccessDenied(encoded=True),
            id="ec2-encoded-only",
        ),
        pytest.param(
            "User: arn:aws:sts::111122223333:assumed-role/shop-deployer/s is not authorized to perform: "
            "ecs:UpdateService on resource: arn:aws:ecs:eu-west-1:111122223333:service/shop/api because no "
            "permissions boundary allows the ecs:UpdateService action",
            AccessDenied(
                action="ecs:UpdateService",
                resource="arn:aws:ecs:eu-west-1:111122223333:service/shop/api",
                principal="arn:aws:sts::111122223333:assumed-role/shop-deployer/s",
                grantee=DEPLOYER,
                missing_allow="permissions boundary",
            ),
            id="permissions-boundary",
        ),
        pytest.param("Access Denied", AccessDenied(), id="s3-bare"),
    ],
)
def test_access_denied_shapes_are_parsed(message: str, expected: AccessDenied) -> None:
    assert parse_access_denied(message) == expected


@pytest.mark.parametrize(
    ("caller", "holder"),
    [
        ("arn:aws:sts::123456789012:assumed-role/deploy/session", "arn:aws:iam::123456789012:role/deploy"),
        # STS drops a role's path: the session of role /service-role/lambda-exec names only the role.
        (
            "arn:aws:sts::123456789012:assumed-role/lambda-exec/shop-orders",
            "arn:aws:iam::123456789012:role/lambda-exec",
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0a1b2c3d/jane.doe@example.com",
            "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0a1b2c3d",
        ),
        ("arn:aws-cn:sts::123456789012:assumed-role/deploy/s", "arn:aws-cn:iam::123456789012:role/deploy"),
        ("arn:aws-us-gov:sts::123456789012:assumed-role/deploy/s", "arn:aws-us-gov:iam::123456789012:role/deploy"),
        ('"arn:aws:sts::123456789012:assumed-role/deploy/s"', "arn:aws:iam::123456789012:role/deploy"),
        # Already something a policy attaches to: unchanged, its path kept.
        (
            "arn:aws:iam::123456789012:role/service-role/lambda-exec",
            "arn:aws:iam::123456789012:role/service-role/lambda-exec",
        ),
        ("arn:aws:iam::123456789012:user/ci", "arn:aws:iam::123456789012:user/ci"),
        # Nothing to attach a policy to.
        ("arn:aws:iam::123456789012:root", None),
        ("arn:aws:sts::123456789012:federated-user/bob", None),
        ("arn:aws:sts:::assumed-role/Cognito_Unauth_Role/CognitoIdentityCredentials", None),
        ("anonymous", None),
        ("arn:aws:sts::123456789012:assumed-role/deploy", None),
    ],
)
def test_policy_holder_of_a_caller(caller: str, holder: str | None) -> None:
    assert policy_holder_arn(caller) == holder


def test_quoted_s3_resource_is_granted_without_its_quotes() -> None:
    failure = classify(client_error("AccessDenied", S3_QUOTED, "PutBucketTagging", 403))

    assert failure.resource == "arn:aws:s3:::my-bucket"
    assert failure.principal == "arn:aws:sts::123456789012:assumed-role/deploy/session"
    assert failure.grantee == "arn:aws:iam::123456789012:role/deploy"
    assert failure.fix.startswith(
        "Grant s3:PutBucketTagging on arn:aws:s3:::my-bucket to arn:aws:iam::123456789012:role/deploy "
    )
    assert '"' not in failure.fix


def test_explicit_deny_names_the_policy_arn_when_aws_gives_it() -> None:
    message = (
        f"User: {ROLE} is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::111122223333:user/ci "
        "with an explicit deny in a service control policy: arn:aws:organizations::999988887777:policy/o-a1/"
        "service_control_policy/p-b2"
    )
    failure = classify(client_error("AccessDenied", message, "CreateUser", 403))

    assert failure.fix.startswith(
        "An explicit Deny (service control policy arn:aws:organizations::999988887777:policy/o-a1/"
        "service_control_policy/p-b2) blocks iam:CreateUser"
    )


def test_missing_resource_policy_grant_is_fixed_on_the_resource() -> None:
    message = (
        f"User: {ROLE} is not authorized to perform: kms:Decrypt on resource: "
        "arn:aws:kms:eu-west-1:111122223333:key/k-1 because no resource-based policy allows the kms:Decrypt action"
    )
    failure = classify(client_error("AccessDeniedException", message, "Decrypt", 400))

    assert failure.category is ErrorCategory.PERMISSION
    assert failure.fix.startswith("The policy of arn:aws:kms:eu-west-1:111122223333:key/k-1 itself")
    assert f"allow kms:Decrypt for {DEPLOYER}" in failure.fix


def test_encoded_ec2_denial_says_how_to_decode_it() -> None:
    message = "You are not authorized to perform this operation. Encoded authorization failure message: 4GIOHlTk"
    failure = classify(client_error("UnauthorizedOperation", message, "RunInstances", 403))

    assert failure.action is None
    assert "aws sts decode-authorization-message" in failure.fix
    assert "{" not in failure.fix


def test_one_error_category_enum_serves_errors_and_the_api() -> None:
    from devops_operator.api import infradeployment

    assert infradeployment.LastError.model_fields["category"].annotation is ErrorCategory
    assert not hasattr(errors, "FailureCategory")
    # Every category a classifier can produce is one the API accepts in status.lastError.
    produced = {rule.category for rule, _ in errors._CODE_TABLE}
    produced |= {rule.category for _, rule in errors._EXCEPTION_TABLE}
    assert produced <= set(ErrorCategory)
    assert ErrorCategory.CREDENTIALS in produced
