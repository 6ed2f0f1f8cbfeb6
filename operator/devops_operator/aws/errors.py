"""What went wrong with an AWS call, and what to do about it.

`classify(exc)` turns a botocore `ClientError`, a `BotoCoreError` (connection, credentials,
parameter errors) or one of the package's own configuration errors into an `AwsFailure`:
a category shared with the issue log, the error code, AWS's message, a proposed fix and
whether retrying can help. The decisions live in data tables, checked in this order:

1. `_CODE_TABLE`: exact AWS error codes;
2. `_CODE_PATTERNS`: code shapes (`InvalidVpcID.NotFound`, `...LimitExceeded`);
3. `_STATUS_TABLE`: the HTTP status of the error response;
4. `_EXCEPTION_TABLE`: botocore exception classes that carry no code.

`_MESSAGE_FIXES` then refines the fix of a permission failure from what `parse_access_denied`
read in the message (an explicit Deny cannot be fixed by a grant; an AccessDenied on
sts:AssumeRole is a trust-policy problem; a missing resource-policy grant is fixed on the
resource, not on the identity).

`policy_holder_arn` maps the caller AWS names (an STS session) to the IAM role or user that a
policy can be attached to: that is who a grant goes to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore import exceptions as boto_errors

from devops_operator.api.common import ErrorCategory


class AwsConfigurationError(Exception):
    """The project's AWS configuration cannot work as written (a spec or Secret problem)."""


class CredentialsError(AwsConfigurationError):
    """Credentials for an environment could not be built; the message names the fix."""


class AccountMismatchError(AwsConfigurationError):
    """The credentials work but belong to another account than the environment's accountId."""


@dataclass(frozen=True)
class AwsFailure:
    """One classified AWS failure."""

    category: ErrorCategory
    code: str
    message: str
    fix: str
    retryable: bool
    operation: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    action: str | None = None
    resource: str | None = None
    # The caller as AWS named it (often an STS session), and the IAM role or user a grant goes to.
    principal: str | None = None
    grantee: str | None = None

    @property
    def summary(self) -> str:
        return (
            f"{self.category}: {self.code}: {self.message}"
            if self.message
            else f"{self.category}: {self.code}"
        )


@dataclass(frozen=True)
class _Rule:
    category: ErrorCategory
    retryable: bool
    fix: str


_FIX_GRANT = (
    "Grant {action} on {resource} to {grantee} (least privilege: only this action and resource), "
    "or let the operator propose it as a PermissionRequest."
)
_FIX_THROTTLED = (
    "AWS throttled {operation}: retry with backoff (the clients use adaptive retries), batch calls "
    "(e.g. GetMetricData with up to 500 queries) or lower the polling frequency; ask for a higher "
    "request-rate quota in Service Quotas if it persists."
)
_FIX_NOT_FOUND = (
    "{operation} refers to something that does not exist: check the name/ARN, the region and the "
    "account (a resource in another region is not found), or create it first."
)
_FIX_QUOTA = (
    "A service quota is exhausted: delete unused resources or request an increase in the Service "
    "Quotas console for this account and region."
)
_FIX_CAPACITY = "AWS has no capacity for this request now: retry later, or use another instance type or zone."
_FIX_INVALID = "AWS refused the request's parameters: correct the value named in the message and re-apply."
_FIX_KEYS = (
    "The access key is not valid here: check the Secret's keys (or the IRSA role), that the key is "
    "active and belongs to this partition, and that endpointUrl is unset for real AWS."
)
_FIX_EXPIRED = (
    "The session token expired: use refreshable credentials (IRSA or a roleArn to assume) instead of "
    "static session tokens, or rotate the Secret."
)
_FIX_SIGNATURE = (
    "The signature did not match: the secret access key does not belong to the access key id, or "
    "the node's clock is wrong (check NTP)."
)
_FIX_CLOCK = "The request's time is too far from AWS's: fix the node's clock (NTP)."
_FIX_OPT_IN = "The account is not subscribed to this service or region: enable it (opt in) for the account."
_FIX_EXISTS = (
    "It already exists: import it into Terraform state, adopt it, or choose another name "
    "(S3 bucket names are global across all accounts)."
)
_FIX_BUSY = (
    "The resource is busy or in the wrong state for {operation}: wait until its current operation "
    "finishes (or it becomes available) and retry."
)
_FIX_DEPENDENT = (
    "Other resources still depend on it: delete or detach the dependents first (Terraform orders "
    "this when they are in the same state), then retry."
)
_FIX_SERVICE = (
    "AWS reported an internal or unavailable service: retry with backoff; check the AWS Health Dashboard."
)

_GRANT = _Rule(ErrorCategory.PERMISSION, False, _FIX_GRANT)
_THROTTLED = _Rule(ErrorCategory.THROTTLING, True, _FIX_THROTTLED)
_NOT_FOUND = _Rule(ErrorCategory.RESOURCE, False, _FIX_NOT_FOUND)
_QUOTA = _Rule(ErrorCategory.QUOTA, False, _FIX_QUOTA)
_CAPACITY = _Rule(ErrorCategory.DEPENDENCY, True, _FIX_CAPACITY)
_BAD_KEYS = _Rule(ErrorCategory.CREDENTIALS, False, _FIX_KEYS)
_EXPIRED = _Rule(ErrorCategory.CREDENTIALS, False, _FIX_EXPIRED)
_SIGNATURE = _Rule(ErrorCategory.CREDENTIALS, False, _FIX_SIGNATURE)
_CLOCK = _Rule(ErrorCategory.CONFIG, False, _FIX_CLOCK)
_OPT_IN = _Rule(ErrorCategory.CONFIG, False, _FIX_OPT_IN)
_INVALID = _Rule(ErrorCategory.CONFIG, False, _FIX_INVALID)
_EXISTS = _Rule(ErrorCategory.STATE, False, _FIX_EXISTS)
_BUSY = _Rule(ErrorCategory.STATE, True, _FIX_BUSY)
_DEPENDENT = _Rule(ErrorCategory.DEPENDENCY, False, _FIX_DEPENDENT)
_SERVICE = _Rule(ErrorCategory.DEPENDENCY, True, _FIX_SERVICE)
_UNKNOWN_CODE = _Rule(
    ErrorCategory.UNKNOWN,
    False,
    "Unrecognised AWS error {code}: read the message and the AWS documentation of {operation}.",
)

# Exact AWS error codes (space-separated) and their rule.
_CODE_TABLE: tuple[tuple[_Rule, str], ...] = (
    (
        _GRANT,
        """AccessDenied AccessDeniedException UnauthorizedOperation AuthorizationError
        UnauthorizedException NotAuthorized Forbidden ForbiddenException InsufficientPermissionsException""",
    ),
    (
        _THROTTLED,
        """Throttling ThrottlingException ThrottledException TooManyRequestsException RequestLimitExceeded
        RequestThrottled RequestThrottledException SlowDown ProvisionedThroughputExceededException
        EC2ThrottledException BandwidthLimitExceeded PriorRequestNotComplete
        TransactionInProgressException""",
    ),
    (
        _NOT_FOUND,
        """ResourceNotFoundException ResourceNotFound NoSuchEntity NoSuchEntityException NoSuchBucket
        NoSuchKey NoSuchHostedZone NotFoundException NotFound DBInstanceNotFound DBInstanceNotFoundFault
        DBClusterNotFoundFault ClusterNotFoundException ServiceNotFoundException RepositoryNotFoundException
        ParameterNotFound QueueDoesNotExist AWS.SimpleQueueService.NonExistentQueue NoSuchDistribution
        StackNotFoundException NoSuchLifecycleConfiguration NoSuchBucketPolicy""",
    ),
    (
        _QUOTA,
        """LimitExceededException LimitExceeded ServiceQuotaExceededException ServiceQuotaExceeded
        QuotaExceededException TooManyBuckets InstanceLimitExceeded VcpuLimitExceeded AddressLimitExceeded
        VpcLimitExceeded MaxSpotInstanceCountExceeded EntityLimitExceeded KMSRequestLimitExceeded
        ClusterQuotaForCustomerExceeded""",
    ),
    (
        _CAPACITY,
        "InsufficientInstanceCapacity InsufficientHostCapacity InsufficientReservedInstanceCapacity",
    ),
    (
        _BAD_KEYS,
        """InvalidClientTokenId UnrecognizedClientException InvalidAccessKeyId AuthFailure InvalidToken
        MissingAuthenticationToken MissingAuthenticationTokenException IncompleteSignature""",
    ),
    (_EXPIRED, "ExpiredToken ExpiredTokenException TokenRefreshRequired"),
    (_SIGNATURE, "SignatureDoesNotMatch InvalidSignatureException"),
    (_CLOCK, "RequestExpired RequestTimeTooSkewed RequestTimeTooSkewedException"),
    (_OPT_IN, "OptInRequired SubscriptionRequiredException"),
    (
        _INVALID,
        """ValidationError ValidationException InvalidParameterValue InvalidParameterValueException
        InvalidParameter InvalidParameterException InvalidParameterCombination MissingParameter
        MalformedPolicyDocument MalformedPolicyDocumentException InvalidInput InvalidRequest InvalidArgument
        InvalidBucketName SerializationException InvalidAction""",
    ),
    (
        _EXISTS,
        """EntityAlreadyExists BucketAlreadyExists BucketAlreadyOwnedByYou ResourceAlreadyExistsException
        AlreadyExistsException AlreadyExists DBInstanceAlreadyExists RepositoryAlreadyExistsException
        InvalidGroup.Duplicate InvalidKeyPair.Duplicate InvalidPermission.Duplicate""",
    ),
    (
        _BUSY,
        """ResourceConflictException ConflictException ResourceInUseException OperationAbortedException
        IncorrectState IncorrectInstanceState InvalidStateException InvalidDBInstanceState
        InvalidDBInstanceStateFault InvalidDBClusterStateFault ConcurrentModificationException
        ConcurrentModification OperationInProgressException PendingVerification""",
    ),
    (_DEPENDENT, "DependencyViolation DeleteConflict BucketNotEmpty"),
    (
        _SERVICE,
        """InternalError InternalFailure InternalServerError InternalServerException InternalServiceError
        InternalServiceException ServiceUnavailable ServiceUnavailableException ServiceFailure Unavailable
        ServiceException""",
    ),
)

_CODE_RULES: Mapping[str, _Rule] = {code: rule for rule, codes in _CODE_TABLE for code in codes.split()}

# Shapes of codes not in the exact table (EC2's `InvalidXxx.NotFound`, service prefixes), in order.
_CODE_PATTERNS: tuple[tuple[re.Pattern[str], _Rule], ...] = (
    (re.compile(r"Throttl|RateExceeded|TooManyRequests"), _THROTTLED),
    (re.compile(r"AccessDenied|Unauthorized|NotAuthorized|Forbidden"), _GRANT),
    (re.compile(r"NotFound|^NoSuch|DoesNotExist|NonExistent"), _NOT_FOUND),
    (re.compile(r"LimitExceeded|QuotaExceeded|TooMany"), _QUOTA),
    (re.compile(r"AlreadyExists|\.Duplicate$"), _EXISTS),
    (re.compile(r"InvalidState|IncorrectState|InUse|Conflict|InProgress"), _BUSY),
    (re.compile(r"^Invalid|Malformed|Validation|^Missing|Unsupported"), _INVALID),
    (re.compile(r"Internal|Unavailable"), _SERVICE),
)

# HTTP status of an error response whose code neither table knows.
_STATUS_TABLE: Mapping[int, _Rule] = {
    401: _BAD_KEYS,
    403: _GRANT,
    404: _NOT_FOUND,
    409: _BUSY,
    429: _THROTTLED,
    500: _SERVICE,
    502: _SERVICE,
    503: _SERVICE,
    504: _SERVICE,
}

_FIX_NETWORK = (
    "The AWS endpoint could not be reached: check the endpointUrl (if set), DNS, proxies and "
    "NetworkPolicies/egress from the operator's namespace, then retry."
)
_FIX_NO_CREDENTIALS = (
    "No AWS credentials were found: set the environment's credentials (irsa with a roleArn and the "
    "ServiceAccount annotation eks.amazonaws.com/role-arn, or secret with secretRef)."
)
_FIX_CREDENTIAL_SOURCE = (
    "The credential source failed (web identity token, SSO or container credentials): check the "
    "ServiceAccount's role annotation, the role's trust policy for the cluster's OIDC provider, "
    "and the token file."
)

_CONFIGURATION = _Rule(ErrorCategory.CONFIG, False, "{message}")
_CREDENTIALS_CONFIGURATION = _Rule(ErrorCategory.CREDENTIALS, False, "{message}")
_NO_CREDENTIALS = _Rule(ErrorCategory.CREDENTIALS, False, _FIX_NO_CREDENTIALS)
_NETWORK = _Rule(ErrorCategory.NETWORK, True, _FIX_NETWORK)
_UNKNOWN_EXCEPTION = _Rule(
    ErrorCategory.UNKNOWN,
    False,
    "Unexpected error {code}: read the message; it did not come from an AWS response.",
)

# Exceptions without an error code; the first matching class wins (subclasses first).
_EXCEPTION_TABLE: tuple[tuple[type[BaseException], _Rule], ...] = (
    (CredentialsError, _CREDENTIALS_CONFIGURATION),
    (AwsConfigurationError, _CONFIGURATION),
    (boto_errors.NoCredentialsError, _NO_CREDENTIALS),
    (boto_errors.PartialCredentialsError, _NO_CREDENTIALS),
    (boto_errors.CredentialRetrievalError, _Rule(ErrorCategory.CREDENTIALS, True, _FIX_CREDENTIAL_SOURCE)),
    (boto_errors.TokenRetrievalError, _Rule(ErrorCategory.CREDENTIALS, False, _FIX_CREDENTIAL_SOURCE)),
    (boto_errors.SSOError, _Rule(ErrorCategory.CREDENTIALS, False, _FIX_CREDENTIAL_SOURCE)),
    (boto_errors.NoRegionError, _Rule(ErrorCategory.CONFIG, False, "Set spec.aws.region.")),
    (boto_errors.ParamValidationError, _INVALID),
    (boto_errors.UnknownServiceError, _Rule(ErrorCategory.CONFIG, False, "Use a service botocore knows.")),
    (
        boto_errors.InvalidRegionError,
        _Rule(ErrorCategory.CONFIG, False, "Use a valid region, e.g. us-east-1."),
    ),
    (boto_errors.ConnectionError, _NETWORK),
    (boto_errors.HTTPClientError, _NETWORK),
    (
        boto_errors.WaiterError,
        _Rule(ErrorCategory.STATE, True, "The resource did not reach the state waited for."),
    ),
    (ConnectionError, _NETWORK),
    (TimeoutError, _NETWORK),
)

_FIX_EXPLICIT_DENY = (
    "An explicit Deny ({policy}) blocks {action}: a grant cannot override it. Ask the account's "
    "administrators to change that policy, or do not perform this action here."
)
_FIX_TRUST = (
    "{principal} may not assume the role: allow it in the role's trust policy (Principal and, if used, "
    "sts:ExternalId), and allow sts:AssumeRole on the role in its own policy."
)
_FIX_RESOURCE_POLICY = (
    "The policy of {resource} itself (a KMS key policy, bucket policy or similar) must allow {action} "
    "for {grantee}: add that statement there; a grant on the identity alone does not suffice."
)
_FIX_BOUNDARY = (
    "The permissions boundary of {grantee} does not allow {action}: widen the boundary (an identity "
    "policy alone cannot), or do not perform this action with this identity."
)
_FIX_SESSION_POLICY = (
    "The session policy passed when the role was assumed does not allow {action}: widen the session "
    "policy, or assume the role without one."
)
_FIX_VPC_ENDPOINT = (
    "The VPC endpoint's policy does not allow {action} on {resource}: allow it in the endpoint policy."
)
_FIX_ENCODED = (
    "AWS encoded the details of the denial: decode them with `aws sts decode-authorization-message "
    "--encoded-message <message>` (needs sts:DecodeAuthorizationMessage) to see the action and resource, "
    "then grant exactly that to {grantee}."
)

_PLACEHOLDERS: Mapping[str, str] = {
    "action": "the denied action",
    "resource": "the resource",
    "principal": "the operator's identity for this environment",
    "grantee": "the operator's identity for this environment",
    "operation": "the call",
    "policy": "a service control policy, permissions boundary or resource policy",
    "message": "",
}


@dataclass(frozen=True)
class AccessDenied:
    """What an AccessDenied message says: who was denied which action on which resource, and why."""

    action: str | None = None
    resource: str | None = None
    # The caller as AWS wrote it, and the IAM role or user a grant for it goes to (policy_holder_arn).
    principal: str | None = None
    grantee: str | None = None
    explicit_deny: bool = False
    # The kind of policy that denied ("service control policy") and its ARN, when AWS names them.
    deny_policy: str | None = None
    deny_policy_arn: str | None = None
    # The kind of policy that would have to allow it ("identity-based policy", "permissions boundary").
    missing_allow: str | None = None
    # EC2's "Encoded authorization failure message": the details are only in the encoded part.
    encoded: bool = False


# Terraform wraps long diagnostics and prefixes each line with its gutter ("│ "); AWS's own
# messages are one line. Matching runs on the text joined back into one line.
_WRAPPED = re.compile(r"\s*\n\s*(?:│\s*)?")
_PRINCIPAL = re.compile(r"(?:User: \"?(?P<user>[^\s\"]+)\"?|(?P<arn>arn:aws[a-z-]*:\S+)) is not authorized to perform")
_ACTION = re.compile(r"not authorized to perform: \"?([A-Za-z0-9-]+:[A-Za-z0-9*]+)")
# Quoted (S3's current format, and the only form that can hold a space) or bare up to whitespace.
_RESOURCE = re.compile(r"on resource: (?:\"(?P<quoted>[^\"]+)\"|(?P<bare>\S+))")
_EXPLICIT_DENY = re.compile(
    r"explicit deny(?: in (?:an? |the )?(?P<kind>[A-Za-z -]+?(?:policy|boundary))(?::? (?P<arn>arn:[^\s\"]+))?)?",
    re.IGNORECASE,
)
_MISSING_ALLOW = re.compile(r"because no (?P<kind>[A-Za-z -]+?(?:policy|boundary)) allows", re.IGNORECASE)
_ENCODED = re.compile(r"encoded authorization failure message", re.IGNORECASE)

# STS names a role's session `assumed-role/<role>/<session>`; role and session names use these characters.
_STS_SESSION = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>[0-9]{12}):assumed-role/(?P<role>[\w+=,.@-]+)/[\w+=,.@-]+$"
)
_IAM_ROLE_OR_USER = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:(?:role|user)/[\w+=,.@/-]+$")


def policy_holder_arn(caller: str) -> str | None:
    """The IAM role or user a policy can be attached to for this caller; None if there is none.

    A session `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` acts with the policies of role ROLE,
    so a grant goes to `arn:aws:iam::ACCOUNT:role/ROLE`. STS leaves the role's path out of session
    ARNs (`/service-role/`, SSO's `/aws-reserved/sso.amazonaws.com/`), so for a role with a path the
    ARN returned lacks it: IAM's role-policy calls take the role name, which it ends with. A role
    or user ARN is returned as it is; the root user, federated users, anonymous callers and
    service principals have no policies of their own to extend (None).
    """
    caller = caller.strip().strip('"')
    session = _STS_SESSION.match(caller)
    if session is not None:
        return f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}"
    return caller if _IAM_ROLE_OR_USER.match(caller) else None


def _trimmed(value: str | None) -> str | None:
    return value.rstrip(".,;:)") if value else None


def parse_access_denied(text: str) -> AccessDenied:
    """Read an AccessDenied message as AWS writes it, alone or wrapped in Terraform's diagnostic.

    Knows the shapes AWS documents (`User: <arn> is not authorized to perform: <action> on resource:
    <arn> because no <policy> allows the <action> action`, `... with an explicit deny in a <policy>`),
    S3's quoted resource ARNs and EC2's encoded messages. A field the text does not carry is None.
    """
    line = _WRAPPED.sub(" ", text)
    found = _PRINCIPAL.search(line)
    principal = (found["user"] or found["arn"]) if found else None
    found = _ACTION.search(line)
    action = found[1] if found else None
    found = _RESOURCE.search(line)
    resource = (found["quoted"] or _trimmed(found["bare"])) if found else None
    deny = _EXPLICIT_DENY.search(line)
    allow = _MISSING_ALLOW.search(line)
    return AccessDenied(
        action=action,
        resource=resource,
        principal=principal,
        grantee=policy_holder_arn(principal) if principal else None,
        explicit_deny=deny is not None,
        deny_policy=deny["kind"].strip() if deny and deny["kind"] else None,
        deny_policy_arn=_trimmed(deny["arn"]) if deny else None,
        missing_allow=allow["kind"].strip() if allow else None,
        encoded=bool(_ENCODED.search(line)),
    )


def _assume_role(denied: AccessDenied) -> bool:
    return denied.action is not None and denied.action.startswith("sts:AssumeRole")


# Refinements of the fix of a permission failure, by what the message said; the first that applies wins.
_MESSAGE_FIXES: tuple[tuple[Callable[[AccessDenied], bool], str], ...] = (
    (lambda denied: denied.explicit_deny, _FIX_EXPLICIT_DENY),
    (_assume_role, _FIX_TRUST),
    (lambda denied: denied.missing_allow == "resource-based policy", _FIX_RESOURCE_POLICY),
    (lambda denied: denied.missing_allow == "permissions boundary", _FIX_BOUNDARY),
    (lambda denied: denied.missing_allow == "session policy", _FIX_SESSION_POLICY),
    (lambda denied: denied.missing_allow == "VPC endpoint policy", _FIX_VPC_ENDPOINT),
    (lambda denied: denied.action is None and denied.encoded, _FIX_ENCODED),
)


class _Fields(dict[str, str]):
    """Template values; a missing one reads as a readable placeholder, never a KeyError."""

    def __missing__(self, key: str) -> str:
        return _PLACEHOLDERS.get(key, key)


def _render(template: str, fields: Mapping[str, str | None]) -> str:
    return template.format_map(_Fields({k: v for k, v in fields.items() if v}))

def _rule_for_code(code: str, status: int | None) -> _Rule:
    rule = _CODE_RULES.get(code)
    if rule is not None:
        return rule
    for pattern, candidate in _CODE_PATTERNS:
        if pattern.search(code):
            return candidate
    if status is not None and status in _STATUS_TABLE:
        return _STATUS_TABLE[status]
    if status is not None and status >= 500:
        return _SERVICE
    return _UNKNOWN_CODE


def _permission_fix(rule: _Rule, denied: AccessDenied) -> str:
    if rule.category is not ErrorCategory.PERMISSION:
        return rule.fix
    return next((fix for applies, fix in _MESSAGE_FIXES if applies(denied)), rule.fix)


def _deny_policy(denied: AccessDenied) -> str | None:
    if denied.deny_policy and denied.deny_policy_arn:
        return f"{denied.deny_policy} {denied.deny_policy_arn}"
    return denied.deny_policy or denied.deny_policy_arn


def _classify_client_error(exc: boto_errors.ClientError) -> AwsFailure:
    response: Mapping[str, Any] = exc.response or {}
    error: Mapping[str, Any] = response.get("Error") or {}
    metadata: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or "")
    status = metadata.get("HTTPStatusCode")
    status = status if isinstance(status, int) else None
    rule = _rule_for_code(code, status)
    denied = parse_access_denied(message)
    fields = {
        "code": code,
        "operation": exc.operation_name,
        "message": message,
        "action": denied.action,
        "resource": denied.resource,
        "principal": denied.principal,
        "grantee": denied.grantee or denied.principal,
        "policy": _deny_policy(denied),
    }
    return AwsFailure(
        category=rule.category,
        code=code,
        message=message,
        fix=_render(_permission_fix(rule, denied), fields),
        retryable=rule.retryable,
        operation=exc.operation_name,
        http_status=status,
        request_id=metadata.get("RequestId"),
        action=denied.action,
        resource=denied.resource,
        principal=denied.principal,
        grantee=denied.grantee,
    )


def _classify_other(exc: BaseException) -> AwsFailure:
    message = str(exc)
    rule = next((r for cls, r in _EXCEPTION_TABLE if isinstance(exc, cls)), _UNKNOWN_EXCEPTION)
    code = type(exc).__name__
    return AwsFailure(
        category=rule.category,
        code=code,
        message=message,
        fix=_render(rule.fix, {"code": code, "message": message}),
        retryable=rule.retryable,
    )


def classify(exc: BaseException) -> AwsFailure:
    """Classify an exception raised by a boto3 call (or by the session factory)."""
    if isinstance(exc, boto_errors.ClientError):
        return _classify_client_error(exc)
    return _classify_other(exc)


def is_throttling(exc: BaseException) -> bool:
    return classify(exc).category is ErrorCategory.THROTTLING


class ProjectNotVerifiedError(AwsConfigurationError):
    """A session was asked for a project the operator has not verified (invalid, denied or not checked yet)."""


# The rules of codes that say the credentials themselves no longer work (not that a permission is missing).
_AUTH_FAILURE_RULES = (_BAD_KEYS, _EXPIRED, _SIGNATURE)


def is_auth_failure(code: str) -> bool:
    """Whether an AWS error code means the credentials stopped working (expired, revoked, wrong key)."""
    return _CODE_RULES.get(code) in _AUTH_FAILURE_RULES
