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

from devops_operator.aws import errors
from devops_operator.aws.errors import (
    AwsConfigurationError,
    CredentialsError,
    FailureCategory,
    classify,
    is_throttling,
)

ROLE = "arn:aws:sts::111122223333:assumed-role/shop-deployer/devops-operator"


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
        ("AccessDenied", 403, FailureCategory.PERMISSION, False),
        ("AccessDeniedException", 400, FailureCategory.PERMISSION, False),
        ("UnauthorizedOperation", 403, FailureCategory.PERMISSION, False),
        ("Throttling", 400, FailureCategory.THROTTLING, True),
        ("ThrottlingException", 400, FailureCategory.THROTTLING, True),
        ("TooManyRequestsException", 429, FailureCategory.THROTTLING, True),
        ("RequestLimitExceeded", 503, FailureCategory.THROTTLING, True),
        ("SlowDown", 503, FailureCategory.THROTTLING, True),
        ("ResourceNotFoundException", 400, FailureCategory.RESOURCE, False),
        ("NoSuchEntity", 404, FailureCategory.RESOURCE, False),
        ("NoSuchBucket", 404, FailureCategory.RESOURCE, False),
        ("InvalidInstanceID.NotFound", 400, FailureCategory.RESOURCE, False),
        ("InvalidVpcID.NotFound", 400, FailureCategory.RESOURCE, False),
        ("LimitExceededException", 400, FailureCategory.QUOTA, False),
        ("ServiceQuotaExceededException", 402, FailureCategory.QUOTA, False),
        ("VcpuLimitExceeded", 400, FailureCategory.QUOTA, False),
        ("InvalidClientTokenId", 403, FailureCategory.CONFIG, False),
        ("ExpiredToken", 400, FailureCategory.CONFIG, False),
        ("SignatureDoesNotMatch", 403, FailureCategory.CONFIG, False),
        ("ValidationException", 400, FailureCategory.CONFIG, False),
        ("MalformedPolicyDocument", 400, FailureCategory.CONFIG, False),
        ("InvalidAMIID.Malformed", 400, FailureCategory.CONFIG, False),
        ("BucketAlreadyExists", 409, FailureCategory.STATE, False),
        ("EntityAlreadyExists", 409, FailureCategory.STATE, False),
        ("ResourceConflictException", 409, FailureCategory.STATE, True),
        ("IncorrectInstanceState", 400, FailureCategory.STATE, True),
        ("DependencyViolation", 400, FailureCategory.DEPENDENCY, False),
        ("DeleteConflict", 409, FailureCategory.DEPENDENCY, False),
        ("InternalError", 500, FailureCategory.DEPENDENCY, True),
        ("ServiceUnavailable", 503, FailureCategory.DEPENDENCY, True),
        ("InsufficientInstanceCapacity", 500, FailureCategory.DEPENDENCY, True),
        ("SomethingNew", 503, FailureCategory.DEPENDENCY, True),
        ("SomethingNew", 403, FailureCategory.PERMISSION, False),
        ("SomethingNew", 400, FailureCategory.UNKNOWN, False),
    ],
)
def test_error_codes_map_to_categories(
    code: str, status: int, category: FailureCategory, retryable: bool
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
    assert failure.fix.startswith(f"Grant s3:GetObject on arn:aws:s3:::shop-prod-assets/index.html to {ROLE}")
    assert failure.summary.startswith("permission: AccessDenied: User: ")


def test_ec2_unauthorized_operation_message() -> None:
    message = (
        "You are not authorized to perform this operation. User: "
        f"{ROLE} is not authorized to perform: ec2:RunInstances on resource: "
        "arn:aws:ec2:us-east-1:111122223333:instance/* because no identity-based policy allows the "
        "ec2:RunInstances action. Encoded authorization failure message: 4GIOHlTkIaWHQD0Q0m6XSnuUMCm"
    )
    failure = classify(client_error("UnauthorizedOperation", message, "RunInstances", 403))

    assert failure.category is FailureCategory.PERMISSION
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

    assert failure.category is FailureCategory.PERMISSION
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
        (NoCredentialsError(), "config", False),
        (ParamValidationError(report="Missing required parameter in input: Bucket"), "config", False),
        (CredentialsError("Secret team-a/aws-keys was not found: create it"), "config", False),
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
    assert (failure.category, failure.retryable) == (FailureCategory.NETWORK, True)
    assert "endpointUrl" in failure.fix


def test_code_table_lists_each_code_once() -> None:
    codes = [code for _, listed in errors._CODE_TABLE for code in listed.split()]

    assert len(codes) == len(set(codes))
