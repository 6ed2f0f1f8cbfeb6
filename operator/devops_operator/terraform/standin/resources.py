"""The stand-in's resource types: each Terraform type mapped to the boto3 calls that create, read, update
and delete it (a data table, as Cloud Custodian keeps its resources).

`read` returns the resource as AWS has it now, or None when it is gone: plans are made from what AWS
says, so a change made behind Terraform's back shows up as drift. Attributes the stand-in does not know
are refused when the module is loaded (never silently dropped).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

Attrs = dict[str, Any]
BOTO_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=10, read_timeout=60)


class Aws:
    """boto3 clients for one provider configuration (region, endpoints, default tags)."""

    def __init__(self, region: str, endpoints: Mapping[str, str] | None = None, module_dir: Path = Path(".")) -> None:
        self.region = region
        self.endpoints = dict(endpoints or {})
        self.module_dir = module_dir
        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            endpoint = self.endpoints.get(service)
            self._clients[service] = self._session.client(  # type: ignore[call-overload]
                service, config=BOTO_CONFIG, **({"endpoint_url": endpoint} if endpoint else {}))
        return self._clients[service]

    @property
    def account(self) -> str:
        return str(self.client("sts").get_caller_identity()["Account"])


def _missing(exc: ClientError, *codes: str) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    return code in codes or "NotFound" in code or "NoSuch" in code


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())]


def _tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


@dataclass(frozen=True)
class ResourceType:
    arguments: Mapping[str, Any]  # argument -> default
    computed: tuple[str, ...]
    create: Callable[[Aws, Attrs], Attrs]
    read: Callable[[Aws, Attrs], Attrs | None]
    update: Callable[[Aws, Attrs, Attrs], Attrs]
    delete: Callable[[Aws, Attrs], None]
    force_new: frozenset[str] = field(default_factory=frozenset)
    required: tuple[str, ...] = ()
    taggable: bool = True


# -- S3 ---------------------------------------------------------------------------------------------

def _s3_create(aws: Aws, a: Attrs) -> Attrs:
    s3 = aws.client("s3")
    kwargs: dict[str, Any] = {"Bucket": a["bucket"]}
    if aws.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    s3.create_bucket(**kwargs)
    if a.get("tags_all"):
        s3.put_bucket_tagging(Bucket=a["bucket"], Tagging={"TagSet": _tag_list(a["tags_all"])})
    return _s3_read(aws, a) or {}


def _s3_read(aws: Aws, a: Attrs) -> Attrs | None:
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=a["bucket"])
    except ClientError as exc:
        if _missing(exc, "404", "NoSuchBucket"):
            return None
        raise
    try:
        tags = _tag_dict(s3.get_bucket_tagging(Bucket=a["bucket"]).get("TagSet"))
    except ClientError as exc:
        if not _missing(exc, "NoSuchTagSet"):
            raise
        tags = {}
    return {"id": a["bucket"], "bucket": a["bucket"], "arn": f"arn:aws:s3:::{a['bucket']}",
            "bucket_domain_name": f"{a['bucket']}.s3.amazonaws.com", "region": aws.region,
            "force_destroy": a.get("force_destroy", False), "tags_all": tags}


def _s3_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    s3 = aws.client("s3")
    if new.get("tags_all"):
        s3.put_bucket_tagging(Bucket=old["bucket"], Tagging={"TagSet": _tag_list(new["tags_all"])})
    else:
        s3.delete_bucket_tagging(Bucket=old["bucket"])
    return {**(_s3_read(aws, old) or {}), "force_destroy": new.get("force_destroy", False)}


def _s3_delete(aws: Aws, a: Attrs) -> None:
    s3 = aws.client("s3")
    if a.get("force_destroy"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a["bucket"]):
            for obj in page.get("Contents") or []:
                s3.delete_object(Bucket=a["bucket"], Key=obj["Key"])
    s3.delete_bucket(Bucket=a["bucket"])


# -- SQS --------------------------------------------------------------------------------------------

_SQS_ATTRIBUTES = {"visibility_timeout_seconds": "VisibilityTimeout", "delay_seconds": "DelaySeconds",
                   "message_retention_seconds": "MessageRetentionPeriod"}


def _sqs_create(aws: Aws, a: Attrs) -> Attrs:
    attributes = {wire: str(a[arg]) for arg, wire in _SQS_ATTRIBUTES.items() if a.get(arg) is not None}
    url = aws.client("sqs").create_queue(QueueName=a["name"], Attributes=attributes,
                                         tags=dict(a.get("tags_all") or {}))["QueueUrl"]
    return _sqs_read(aws, {**a, "id": url}) or {}


def _sqs_read(aws: Aws, a: Attrs) -> Attrs | None:
    sqs = aws.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=a["name"])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}
    except ClientError as exc:
        if _missing(exc, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise
    values: Attrs = {"id": url, "url": url, "name": a["name"], "arn": attributes.get("QueueArn"), "tags_all": tags}
    for arg, wire in _SQS_ATTRIBUTES.items():
        values[arg] = int(attributes[wire]) if wire in attributes else None
    return values


def _sqs_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    sqs = aws.client("sqs")
    attributes = {wire: str(new[arg]) for arg, wire in _SQS_ATTRIBUTES.items() if new.get(arg) is not None}
    if attributes:
        sqs.set_queue_attributes(QueueUrl=old["url"], Attributes=attributes)
    stale = [k for k in (old.get("tags_all") or {}) if k not in (new.get("tags_all") or {})]
    if stale:
        sqs.untag_queue(QueueUrl=old["url"], TagKeys=stale)
    if new.get("tags_all"):
        sqs.tag_queue(QueueUrl=old["url"], Tags=dict(new["tags_all"]))
    return _sqs_read(aws, old) or {}


def _sqs_delete(aws: Aws, a: Attrs) -> None:
    aws.client("sqs").delete_queue(QueueUrl=a["url"])


# -- SNS --------------------------------------------------------------------------------------------

def _sns_create(aws: Aws, a: Attrs) -> Attrs:
    arn = aws.client("sns").create_topic(Name=a["name"], Tags=_tag_list(a.get("tags_all") or {}))["TopicArn"]
    return _sns_read(aws, {**a, "arn": arn}) or {}


def _sns_read(aws: Aws, a: Attrs) -> Attrs | None:
    sns = aws.client("sns")
    arn = a.get("arn") or f"arn:aws:sns:{aws.region}:{aws.account}:{a['name']}"
    try:
        sns.get_topic_attributes(TopicArn=arn)
        tags = _tag_dict(sns.list_tags_for_resource(ResourceArn=arn).get("Tags"))
    except ClientError as exc:
        if _missing(exc, "NotFound"):
            return None
        raise
    return {"id": arn, "arn": arn, "name": a["name"], "tags_all": tags}


def _sns_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    sns = aws.client("sns")
    stale = [k for k in (old.get("tags_all") or {}) if k not in (new.get("tags_all") or {})]
    if stale:
        sns.untag_resource(ResourceArn=old["arn"], TagKeys=stale)
    if new.get("tags_all"):
        sns.tag_resource(ResourceArn=old["arn"], Tags=_tag_list(new["tags_all"]))
    return _sns_read(aws, old) or {}


def _sns_delete(aws: Aws, a: Attrs) -> None:
    aws.client("sns").delete_topic(TopicArn=a["arn"])


# -- DynamoDB ---------------------------------------------------------------------------------------

def _ddb_create(aws: Aws, a: Attrs) -> Attrs:
    ddb = aws.client("dynamodb")
    keys = [{"AttributeName": a["hash_key"], "KeyType": "HASH"}]
    if a.get("range_key"):
        keys.append({"AttributeName": a["range_key"], "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {
        "TableName": a["name"], "KeySchema": keys, "BillingMode": a.get("billing_mode") or "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": x["name"], "AttributeType": x["type"]}
                                 for x in a.get("attribute") or []],
    }
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = {"ReadCapacityUnits": int(a.get("read_capacity") or 1),
                                           "WriteCapacityUnits": int(a.get("write_capacity") or 1)}
    if a.get("tags_all"):
        kwargs["Tags"] = _tag_list(a["tags_all"])
    ddb.create_table(**kwargs)
    return _ddb_read(aws, a) or {}


def _ddb_read(aws: Aws, a: Attrs) -> Attrs | None:
    ddb = aws.client("dynamodb")
    try:
        table = ddb.describe_table(TableName=a["name"])["Table"]
    except ClientError as exc:
        if _missing(exc, "ResourceNotFoundException"):
            return None
        raise
    keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
    tags = _tag_dict(ddb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags"))
    billing = (table.get("BillingModeSummary") or {}).get("BillingMode") or a.get("billing_mode") or "PROVISIONED"
    throughput = table.get("ProvisionedThroughput") or {}
    return {
        "id": a["name"], "name": a["name"], "arn": table["TableArn"], "hash_key": keys.get("HASH"),
        "range_key": keys.get("RANGE"), "billing_mode": billing,
        "read_capacity": throughput.get("ReadCapacityUnits") if billing == "PROVISIONED" else a.get("read_capacity"),
        "write_capacity": throughput.get("WriteCapacityUnits") if billing == "PROVISIONED"
        else a.get("write_capacity"),
        "attribute": sorted(({"name": d["AttributeName"], "type": d["AttributeType"]}
                             for d in table.get("AttributeDefinitions") or []), key=lambda d: d["name"]),
        "tags_all": tags,
    }


def _ddb_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    ddb = aws.client("dynamodb")
    stale = [k for k in (old.get("tags_all") or {}) if k not in (new.get("tags_all") or {})]
    if stale:
        ddb.untag_resource(ResourceArn=old["arn"], TagKeys=stale)
    if new.get("tags_all"):
        ddb.tag_resource(ResourceArn=old["arn"], Tags=_tag_list(new["tags_all"]))
    return _ddb_read(aws, old) or {}


def _ddb_delete(aws: Aws, a: Attrs) -> None:
    aws.client("dynamodb").delete_table(TableName=a["name"])


# -- IAM --------------------------------------------------------------------------------------------

def _policy_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _same_policy(a: Any, b: Any) -> bool:
    try:
        return bool(json.loads(_policy_text(a)) == json.loads(_policy_text(b)))
    except (TypeError, ValueError):
        return a == b


def _role_create(aws: Aws, a: Attrs) -> Attrs:
    aws.client("iam").create_role(RoleName=a["name"], AssumeRolePolicyDocument=_policy_text(a["assume_role_policy"]),
                                  Path=a.get("path") or "/", Tags=_tag_list(a.get("tags_all") or {}),
                                  Description=a.get("description") or "")
    return _role_read(aws, a) or {}


def _role_read(aws: Aws, a: Attrs) -> Attrs | None:
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName=a["name"])["Role"]
    except ClientError as exc:
        if _missing(exc, "NoSuchEntity"):
            return None
        raise
    document = role.get("AssumeRolePolicyDocument")
    policy: Any = document if isinstance(document, str) else json.dumps(document, separators=(",", ":"), sort_keys=True)
    if _same_policy(policy, a.get("assume_role_policy")):
        policy = a.get("assume_role_policy")  # keep the module's spelling when AWS's means the same
    return {"id": role["RoleName"], "name": role["RoleName"], "arn": role["Arn"], "unique_id": role["RoleId"],
            "path": role.get("Path", "/"), "assume_role_policy": policy, "description": role.get("Description") or "",
            "tags_all": _tag_dict(role.get("Tags"))}


def _role_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    iam = aws.client("iam")
    if not _same_policy(old.get("assume_role_policy"), new.get("assume_role_policy")):
        iam.update_assume_role_policy(RoleName=old["name"], PolicyDocument=_policy_text(new["assume_role_policy"]))
    stale = [k for k in (old.get("tags_all") or {}) if k not in (new.get("tags_all") or {})]
    if stale:
        iam.untag_role(RoleName=old["name"], TagKeys=stale)
    if new.get("tags_all"):
        iam.tag_role(RoleName=old["name"], Tags=_tag_list(new["tags_all"]))
    return _role_read(aws, new) or {}


def _role_delete(aws: Aws, a: Attrs) -> None:
    aws.client("iam").delete_role(RoleName=a["name"])


def _role_policy_create(aws: Aws, a: Attrs) -> Attrs:
    aws.client("iam").put_role_policy(RoleName=a["role"], PolicyName=a["name"],
                                      PolicyDocument=_policy_text(a["policy"]))
    return _role_policy_read(aws, a) or {}


def _role_policy_read(aws: Aws, a: Attrs) -> Attrs | None:
    try:
        found = aws.client("iam").get_role_policy(RoleName=a["role"], PolicyName=a["name"])
    except ClientError as exc:
        if _missing(exc, "NoSuchEntity"):
            return None
        raise
    document = found["PolicyDocument"]
    policy: Any = document if isinstance(document, str) else json.dumps(document, separators=(",", ":"), sort_keys=True)
    if _same_policy(policy, a.get("policy")):
        policy = a.get("policy")
    return {"id": f"{a['role']}:{a['name']}", "name": a["name"], "role": a["role"], "policy": policy}


def _role_policy_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    return _role_policy_create(aws, new)


def _role_policy_delete(aws: Aws, a: Attrs) -> None:
    aws.client("iam").delete_role_policy(RoleName=a["role"], PolicyName=a["name"])


# -- CloudWatch Logs --------------------------------------------------------------------------------

def _logs_create(aws: Aws, a: Attrs) -> Attrs:
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=a["name"], tags=dict(a.get("tags_all") or {}))
    if a.get("retention_in_days"):
        logs.put_retention_policy(logGroupName=a["name"], retentionInDays=int(a["retention_in_days"]))
    return _logs_read(aws, a) or {}


def _logs_read(aws: Aws, a: Attrs) -> Attrs | None:
    logs = aws.client("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=a["name"]).get("logGroups") or []
    group = next((g for g in groups if g["logGroupName"] == a["name"]), None)
    if group is None:
        return None
    arn = group["arn"].removesuffix(":*")
    tags = logs.list_tags_log_group(logGroupName=a["name"]).get("tags") or {}
    return {"id": a["name"], "name": a["name"], "arn": arn, "retention_in_days": group.get("retentionInDays") or 0,
            "tags_all": tags}


def _logs_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    logs = aws.client("logs")
    if new.get("retention_in_days"):
        logs.put_retention_policy(logGroupName=old["name"], retentionInDays=int(new["retention_in_days"]))
    else:
        logs.delete_retention_policy(logGroupName=old["name"])
    stale = [k for k in (old.get("tags_all") or {}) if k not in (new.get("tags_all") or {})]
    if stale:
        logs.untag_log_group(logGroupName=old["name"], tags=stale)
    if new.get("tags_all"):
        logs.tag_log_group(logGroupName=old["name"], tags=dict(new["tags_all"]))
    return _logs_read(aws, old) or {}


def _logs_delete(aws: Aws, a: Attrs) -> None:
    aws.client("logs").delete_log_group(logGroupName=a["name"])


# -- Lambda -----------------------------------------------------------------------------------------

def _lambda_code(aws: Aws, a: Attrs) -> bytes:
    if a.get("filename"):
        path = aws.module_dir / str(a["filename"])
        return path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # an empty handler keeps moto's validation happy
        archive.writestr("index.py", "def handler(event, context):\n    return {'ok': True}\n")
    return buffer.getvalue()


def _lambda_create(aws: Aws, a: Attrs) -> Attrs:
    aws.client("lambda").create_function(
        FunctionName=a["function_name"], Role=a["role"], Handler=a.get("handler") or "index.handler",
        Runtime=a.get("runtime") or "python3.12", Code={"ZipFile": _lambda_code(aws, a)},
        MemorySize=int(a.get("memory_size") or 128), Timeout=int(a.get("timeout") or 3),
        Environment={"Variables": dict((a.get("environment") or [{}])[0].get("variables") or {})}
        if a.get("environment") else {"Variables": {}},
        Tags=dict(a.get("tags_all") or {}),
    )
    return _lambda_read(aws, a) or {}


def _lambda_read(aws: Aws, a: Attrs) -> Attrs | None:
    client = aws.client("lambda")
    try:
        config = client.get_function(FunctionName=a["function_name"])
    except ClientError as exc:
        if _missing(exc, "ResourceNotFoundException"):
            return None
        raise
    fn = config["Configuration"]
    variables = (fn.get("Environment") or {}).get("Variables") or {}
    return {
        "id": fn["FunctionName"], "function_name": fn["FunctionName"], "arn": fn["FunctionArn"],
        "invoke_arn": (f"arn:aws:apigateway:{aws.region}:lambda:path/2015-03-31/functions/"
                       f"{fn['FunctionArn']}/invocations"),
        "role": fn["Role"], "handler": fn.get("Handler"), "runtime": fn.get("Runtime"),
        "memory_size": fn.get("MemorySize"), "timeout": fn.get("Timeout"), "filename": a.get("filename"),
        "environment": [{"variables": variables}] if variables else a.get("environment") or [],
        "tags_all": config.get("Tags") or {},
    }


def _lambda_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    client = aws.client("lambda")
    client.update_function_configuration(
        FunctionName=old["function_name"], Role=new["role"], Handler=new.get("handler") or "index.handler",
        Runtime=new.get("runtime") or "python3.12", MemorySize=int(new.get("memory_size") or 128),
        Timeout=int(new.get("timeout") or 3),
    )
    stale = [k for k in (old.get("tags_all") or {}) if k not in (new.get("tags_all") or {})]
    if stale:
        client.untag_resource(Resource=old["arn"], TagKeys=stale)
    if new.get("tags_all"):
        client.tag_resource(Resource=old["arn"], Tags=dict(new["tags_all"]))
    return _lambda_read(aws, old) or {}


def _lambda_delete(aws: Aws, a: Attrs) -> None:
    aws.client("lambda").delete_function(FunctionName=a["function_name"])


# -- Security groups --------------------------------------------------------------------------------

def _sg_create(aws: Aws, a: Attrs) -> Attrs:
    ec2 = aws.client("ec2")
    kwargs: dict[str, Any] = {"GroupName": a["name"], "Description": a.get("description") or "Managed by Terraform"}
    if a.get("vpc_id"):
        kwargs["VpcId"] = a["vpc_id"]
    if a.get("tags_all"):
        kwargs["TagSpecifications"] = [{"ResourceType": "security-group", "Tags": _tag_list(a["tags_all"])}]
    group_id = ec2.create_security_group(**kwargs)["GroupId"]
    return _sg_read(aws, {**a, "id": group_id}) or {}


def _sg_read(aws: Aws, a: Attrs) -> Attrs | None:
    ec2 = aws.client("ec2")
    try:
        if a.get("id"):
            groups = ec2.describe_security_groups(GroupIds=[a["id"]])["SecurityGroups"]
        else:
            groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [a["name"]]}])[
                "SecurityGroups"]
    except ClientError as exc:
        if _missing(exc, "InvalidGroup.NotFound"):
            return None
        raise
    if not groups:
        return None
    group = groups[0]
    return {"id": group["GroupId"], "name": group["GroupName"], "description": group.get("Description"),
            "vpc_id": group.get("VpcId"), "owner_id": group.get("OwnerId"),
            "arn": f"arn:aws:ec2:{aws.region}:{group.get('OwnerId')}:security-group/{group['GroupId']}",
            "tags_all": _tag_dict(group.get("Tags"))}


def _sg_update(aws: Aws, old: Attrs, new: Attrs) -> Attrs:
    ec2 = aws.client("ec2")
    stale = [k for k in (old.get("tags_all") or {}) if k not in (new.get("tags_all") or {})]
    if stale:
        ec2.delete_tags(Resources=[old["id"]], Tags=[{"Key": k} for k in stale])
    if new.get("tags_all"):
        ec2.create_tags(Resources=[old["id"]], Tags=_tag_list(new["tags_all"]))
    return _sg_read(aws, old) or {}


def _sg_delete(aws: Aws, a: Attrs) -> None:
    aws.client("ec2").delete_security_group(GroupId=a["id"])


TYPES: dict[str, ResourceType] = {
    "aws_s3_bucket": ResourceType(
        arguments={"bucket": None, "force_destroy": False, "tags": None}, required=("bucket",),
        computed=("id", "arn", "bucket_domain_name", "region"), force_new=frozenset({"bucket"}),
        create=_s3_create, read=_s3_read, update=_s3_update, delete=_s3_delete),
    "aws_sqs_queue": ResourceType(
        arguments={"name": None, "tags": None, "visibility_timeout_seconds": 30, "delay_seconds": 0,
                   "message_retention_seconds": 345600}, required=("name",),
        computed=("id", "arn", "url"), force_new=frozenset({"name"}),
        create=_sqs_create, read=_sqs_read, update=_sqs_update, delete=_sqs_delete),
    "aws_sns_topic": ResourceType(
        arguments={"name": None, "tags": None}, required=("name",), computed=("id", "arn"),
        force_new=frozenset({"name"}), create=_sns_create, read=_sns_read, update=_sns_update, delete=_sns_delete),
    "aws_dynamodb_table": ResourceType(
        arguments={"name": None, "hash_key": None, "range_key": None, "billing_mode": "PROVISIONED",
                   "read_capacity": None, "write_capacity": None, "attribute": [], "tags": None},
        required=("name", "hash_key"), computed=("id", "arn"),
        force_new=frozenset({"name", "hash_key", "range_key"}),
        create=_ddb_create, read=_ddb_read, update=_ddb_update, delete=_ddb_delete),
    "aws_iam_role": ResourceType(
        arguments={"name": None, "assume_role_policy": None, "path": "/", "description": "", "tags": None},
        required=("name", "assume_role_policy"), computed=("id", "arn", "unique_id"),
        force_new=frozenset({"name", "path"}),
        create=_role_create, read=_role_read, update=_role_update, delete=_role_delete),
    "aws_iam_role_policy": ResourceType(
        arguments={"name": None, "role": None, "policy": None}, required=("name", "role", "policy"),
        computed=("id",), force_new=frozenset({"name", "role"}), taggable=False,
        create=_role_policy_create, read=_role_policy_read, update=_role_policy_update, delete=_role_policy_delete),
    "aws_cloudwatch_log_group": ResourceType(
        arguments={"name": None, "retention_in_days": 0, "tags": None}, required=("name",),
        computed=("id", "arn"), force_new=frozenset({"name"}),
        create=_logs_create, read=_logs_read, update=_logs_update, delete=_logs_delete),
    "aws_lambda_function": ResourceType(
        arguments={"function_name": None, "role": None, "handler": None, "runtime": None, "memory_size": 128,
                   "timeout": 3, "filename": None, "environment": [], "tags": None},
        required=("function_name", "role"), computed=("id", "arn", "invoke_arn"),
        force_new=frozenset({"function_name"}),
        create=_lambda_create, read=_lambda_read, update=_lambda_update, delete=_lambda_delete),
    "aws_security_group": ResourceType(
        arguments={"name": None, "description": "Managed by Terraform", "vpc_id": None, "tags": None},
        required=("name",), computed=("id", "arn", "owner_id"),
        force_new=frozenset({"name", "description", "vpc_id"}),
        create=_sg_create, read=_sg_read, update=_sg_update, delete=_sg_delete),
}
