"""The remediation actions against AWS: one executor per (action, resource type) of the action registry.

Cloud Custodian style, two tables instead of branches:

- `RESOURCES`: per resource type, how to read it (its state, for the impact assessment, and its tags, for
  the ownership check) and which boto3 client it needs;
- `EXECUTORS`: per (action, resource type) of `api/actions.REGISTRY`, what the action reads, plans, sends,
  and how to tell from the resource's state afterwards whether it happened (`confirm`): that is what lets
  a restarted operator finish an interrupted action instead of sending it twice. Each executor also says
  how its effect is undone (`inverse_request`), for the registry's inverse action.

Every AWS call made here is one of the IAM permissions the registry lists for that action and type
(tests/test_remediation_actions.py checks it against moto), so the permissions in docs/operations.md are
exactly what the operator uses. Values written to status are identifiers and settings, never environment
variable values or other configuration that may hold secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from botocore.exceptions import ClientError

from devops_operator.api.actions import REGISTRY, RemediationParameters
from devops_operator.api.common import ResourceType

# Lambda starts fresh execution environments after any configuration change; this variable is the change
# a restart makes, and its value is the action's intent id (so the operator can find its own restart).
RESTART_VARIABLE = "DEVOPS_OPERATOR_RESTART"
UNRESERVED = "unreserved"
NOT_FOUND_CODES = frozenset({
    "ResourceNotFoundException", "DBInstanceNotFound", "DBInstanceNotFoundFault", "ClusterNotFoundException",
    "ServiceNotFoundException",
})
MAX_PAGES = 100


class Applied(StrEnum):
    YES = "applied"
    NO = "not-applied"
    UNKNOWN = "unknown"


class TargetNotFound(Exception):
    """The target (or a part of it the action needs, such as a Lambda alias) does not exist."""


class CannotPlan(Exception):
    """The action cannot be planned as asked: the field and the fix are in the message.

    `waiting`: the resource may allow it later (an RDS instance that is not available yet).
    """

    def __init__(self, field: str, message: str, *, waiting: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.waiting = waiting


@dataclass(frozen=True)
class Target:
    type: ResourceType
    id: str
    cluster: str | None = None
    alias: str | None = None

    @property
    def name(self) -> str:
        """The resource's own name (the last part of an ARN)."""
        if not self.id.startswith("arn:"):
            return self.id
        resource = self.id.split(":", 5)[-1]  # function:NAME[:qualifier], service/CLUSTER/NAME, db:NAME
        if resource.startswith("function:"):
            return resource.split(":")[1]
        return resource.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Described:
    arn: str
    state: dict[str, str]
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedChange:
    attribute: str
    current: str
    proposed: str


@dataclass(frozen=True)
class Plan:
    changes: tuple[PlannedChange, ...]
    request: dict[str, str]


def _not_found(exc: ClientError) -> bool:
    return str((exc.response.get("Error") or {}).get("Code")) in NOT_FOUND_CODES


class ResourceAdapter(Protocol):
    service: str

    def describe(self, client: Any, target: Target) -> Described: ...

    def tags(self, client: Any, described: Described) -> dict[str, str]: ...


class Executor(Protocol):
    def read(self, client: Any, target: Target, described: Described) -> dict[str, str]: ...

    def plan(self, client: Any, state: Mapping[str, str], parameters: RemediationParameters,
             target: Target) -> Plan: ...

    def act(self, client: Any, target: Target, request: Mapping[str, str], intent: str) -> dict[str, str]: ...

    def confirm(self, client: Any, target: Target, state: Mapping[str, str], request: Mapping[str, str],
                previous: Mapping[str, str], intent: str, started: datetime) -> Applied: ...

    def inverse_request(self, previous: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]: ...


# --- resource types -------------------------------------------------------------------------------------------


class LambdaFunction:
    service = "lambda"

    def describe(self, client: Any, target: Target) -> Described:
        try:
            config = client.get_function_configuration(FunctionName=target.id)
        except ClientError as exc:
            if _not_found(exc):
                raise TargetNotFound(f"Lambda function {target.id} does not exist") from None
            raise
        state = {"functionArn": str(config["FunctionArn"]), "lastModified": str(config.get("LastModified") or ""),
                 "state": str(config.get("State") or ""), "lastUpdateStatus": str(config.get("LastUpdateStatus") or "")}
        if config.get("RevisionId"):
            state["revisionId"] = str(config["RevisionId"])
        return Described(arn=str(config["FunctionArn"]), state=state, raw=config)

    def tags(self, client: Any, described: Described) -> dict[str, str]:
        return {str(k): str(v) for k, v in (client.list_tags(Resource=described.arn).get("Tags") or {}).items()}


class EcsService:
    service = "ecs"

    def describe(self, client: Any, target: Target) -> Described:
        try:
            found = client.describe_services(cluster=target.cluster, services=[target.id])
        except ClientError as exc:
            if _not_found(exc):
                raise TargetNotFound(f"ECS cluster {target.cluster} does not exist") from None
            raise
        services = [s for s in found.get("services") or [] if s.get("status") != "INACTIVE"]
        if not services:
            raise TargetNotFound(f"ECS service {target.id} does not exist in cluster {target.cluster}")
        service = services[0]
        primary: Mapping[str, Any] = next(
            (d for d in service.get("deployments") or [] if d.get("status") == "PRIMARY"), {})
        state = {"serviceArn": str(service["serviceArn"]), "status": str(service.get("status") or ""),
                 "taskDefinition": str(service.get("taskDefinition") or ""),
                 "desiredCount": str(service.get("desiredCount", "")),
                 "primaryDeployment": str(primary.get("id") or "")}
        return Described(arn=str(service["serviceArn"]), state=state, raw=service)

    def tags(self, client: Any, described: Described) -> dict[str, str]:
        found = client.list_tags_for_resource(resourceArn=described.arn).get("tags") or []
        return {str(t.get("key")): str(t.get("value")) for t in found}


class RdsInstance:
    service = "rds"

    def describe(self, client: Any, target: Target) -> Described:
        try:
            found = client.describe_db_instances(DBInstanceIdentifier=target.name)["DBInstances"]
        except ClientError as exc:
            if _not_found(exc):
                raise TargetNotFound(f"RDS DB instance {target.name} does not exist") from None
            raise
        db = found[0]
        state = {"dbInstanceArn": str(db["DBInstanceArn"]), "status": str(db.get("DBInstanceStatus") or ""),
                 "instanceClass": str(db.get("DBInstanceClass") or ""), "engine": str(db.get("Engine") or ""),
                 "multiAZ": str(bool(db.get("MultiAZ"))).lower()}
        return Described(arn=str(db["DBInstanceArn"]), state=state, raw=db)

    def tags(self, client: Any, described: Described) -> dict[str, str]:
        found = client.list_tags_for_resource(ResourceName=described.arn).get("TagList") or []
        return {str(t.get("Key")): str(t.get("Value")) for t in found}


RESOURCES: dict[ResourceType, ResourceAdapter] = {
    ResourceType.LAMBDA: LambdaFunction(),
    ResourceType.ECS_SERVICE: EcsService(),
    ResourceType.RDS: RdsInstance(),
}


# --- actions ------------------------------------------------------------------------------------------------


def _same(state: Mapping[str, str], key: str, wanted: str) -> Applied:
    return Applied.YES if state.get(key) == wanted else Applied.NO


class LambdaRestart:
    def read(self, client: Any, target: Target, described: Described) -> dict[str, str]:
        variables = ((described.raw.get("Environment") or {}).get("Variables") or {})
        return {**described.state, "restartStamp": str(variables.get(RESTART_VARIABLE) or "")}

    def plan(self, client: Any, state: Mapping[str, str], parameters: RemediationParameters,
             target: Target) -> Plan:
        return Plan((PlannedChange(f"environment variable {RESTART_VARIABLE}", state.get("restartStamp") or "(unset)",
                                   "this remediation's intent id"),), {"restart": "true"})

    def act(self, client: Any, target: Target, request: Mapping[str, str], intent: str) -> dict[str, str]:
        config = client.get_function_configuration(FunctionName=target.id)
        variables = dict((config.get("Environment") or {}).get("Variables") or {})
        variables[RESTART_VARIABLE] = intent
        update: dict[str, Any] = {"FunctionName": target.id, "Environment": {"Variables": variables}}
        if config.get("RevisionId"):
            update["RevisionId"] = config["RevisionId"]  # refused if the function changed since it was read
        result = client.update_function_configuration(**update)
        return {"lastModified": str(result.get("LastModified") or ""), RESTART_VARIABLE: intent}

    def confirm(self, client: Any, target: Target, state: Mapping[str, str], request: Mapping[str, str],
                previous: Mapping[str, str], intent: str, started: datetime) -> Applied:
        return _same(state, "restartStamp", intent)

    def inverse_request(self, previous: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
        return {}


class LambdaScale:
    def read(self, client: Any, target: Target, described: Described) -> dict[str, str]:
        found = client.get_function_concurrency(FunctionName=target.id).get("ReservedConcurrentExecutions")
        return {**described.state, "reservedConcurrency": UNRESERVED if found is None else str(found)}

    def plan(self, client: Any, state: Mapping[str, str], parameters: RemediationParameters,
             target: Target) -> Plan:
        proposed = str(parameters.reserved_concurrency)
        return Plan((PlannedChange("reservedConcurrency", state["reservedConcurrency"], proposed),),
                    {"reservedConcurrency": proposed})

    def act(self, client: Any, target: Target, request: Mapping[str, str], intent: str) -> dict[str, str]:
        wanted = request["reservedConcurrency"]
        if wanted == UNRESERVED:
            client.delete_function_concurrency(FunctionName=target.id)
        else:
            client.put_function_concurrency(FunctionName=target.id, ReservedConcurrentExecutions=int(wanted))
        return {"reservedConcurrency": wanted}

    def confirm(self, client: Any, target: Target, state: Mapping[str, str], request: Mapping[str, str],
                previous: Mapping[str, str], intent: str, started: datetime) -> Applied:
        return _same(state, "reservedConcurrency", request["reservedConcurrency"])

    def inverse_request(self, previous: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
        return {"reservedConcurrency": previous["reservedConcurrency"]}


def _versions(client: Any, function: str) -> list[int]:
    found: list[int] = []
    marker: str | None = None
    for _ in range(MAX_PAGES):
        page = client.list_versions_by_function(FunctionName=function, **({"Marker": marker} if marker else {}))
        found += [int(v["Version"]) for v in page.get("Versions") or [] if str(v.get("Version")).isdigit()]
        marker = page.get("NextMarker")
        if not marker:
            break
    return sorted(found)


class LambdaAliasRollback:
    def read(self, client: Any, target: Target, described: Described) -> dict[str, str]:
        try:
            alias = client.get_alias(FunctionName=target.id, Name=target.alias)
        except ClientError as exc:
            if _not_found(exc):
                raise TargetNotFound(f"alias {target.alias} of Lambda function {target.id} does not exist") from None
            raise
        versions = _versions(client, target.id)
        return {**described.state, "aliasVersion": str(alias["FunctionVersion"]),
                "publishedVersions": ",".join(str(v) for v in versions)}

    def plan(self, client: Any, state: Mapping[str, str], parameters: RemediationParameters,
             target: Target) -> Plan:
        current = state["aliasVersion"]
        versions = [int(v) for v in state["publishedVersions"].split(",") if v]
        if parameters.target_version is not None:
            wanted = parameters.target_version
            if int(wanted) not in versions:
                raise CannotPlan("spec.parameters.targetVersion",
                                 f"function {target.id} has no published version {wanted} (published: "
                                 f"{', '.join(map(str, versions)) or 'none'}): name one of them")
        else:
            earlier = [v for v in versions if current.isdigit() and v < int(current)]
            if not earlier:
                raise CannotPlan("spec.parameters.targetVersion",
                                 f"alias {target.alias} points at version {current} and function {target.id} has no "
                                 "published version before it: there is nothing to roll back to; set "
                                 "parameters.targetVersion")
            wanted = str(earlier[-1])
        if wanted == current:
            raise CannotPlan("spec.parameters.targetVersion",
                             f"alias {target.alias} already points at version {wanted}: nothing would change")
        return Plan((PlannedChange(f"alias {target.alias} version", current, wanted),), {"aliasVersion": wanted})

    def act(self, client: Any, target: Target, request: Mapping[str, str], intent: str) -> dict[str, str]:
        result = client.update_alias(FunctionName=target.id, Name=target.alias, FunctionVersion=request["aliasVersion"])
        return {"aliasVersion": str(result.get("FunctionVersion") or request["aliasVersion"])}

    def confirm(self, client: Any, target: Target, state: Mapping[str, str], request: Mapping[str, str],
                previous: Mapping[str, str], intent: str, started: datetime) -> Applied:
        return _same(state, "aliasVersion", request["aliasVersion"])

    def inverse_request(self, previous: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
        return {"aliasVersion": previous["aliasVersion"]}


class EcsRestart:
    def read(self, client: Any, target: Target, described: Described) -> dict[str, str]:
        return dict(described.state)

    def plan(self, client: Any, state: Mapping[str, str], parameters: RemediationParameters,
             target: Target) -> Plan:
        revision = state["taskDefinition"].rsplit("/", 1)[-1]
        return Plan((PlannedChange("primary deployment", state["primaryDeployment"] or "(none)",
                                   f"a new deployment of {revision}"),), {"forceNewDeployment": "true"})

    def act(self, client: Any, target: Target, request: Mapping[str, str], intent: str) -> dict[str, str]:
        service = client.update_service(cluster=target.cluster, service=target.id, forceNewDeployment=True)["service"]
        primary: Mapping[str, Any] = next(
            (d for d in service.get("deployments") or [] if d.get("status") == "PRIMARY"), {})
        return {"deploymentId": str(primary.get("id") or "")}

    def confirm(self, client: Any, target: Target, state: Mapping[str, str], request: Mapping[str, str],
                previous: Mapping[str, str], intent: str, started: datetime) -> Applied:
        moved = state.get("primaryDeployment") and state.get("primaryDeployment") != previous.get("primaryDeployment")
        return Applied.YES if moved else Applied.NO

    def inverse_request(self, previous: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
        return {}


class EcsScale:
    def read(self, client: Any, target: Target, described: Described) -> dict[str, str]:
        return dict(described.state)

    def plan(self, client: Any, state: Mapping[str, str], parameters: RemediationParameters,
             target: Target) -> Plan:
        proposed = str(parameters.desired_count)
        return Plan((PlannedChange("desiredCount", state["desiredCount"], proposed),), {"desiredCount": proposed})

    def act(self, client: Any, target: Target, request: Mapping[str, str], intent: str) -> dict[str, str]:
        service = client.update_service(cluster=target.cluster, service=target.id,
                                        desiredCount=int(request["desiredCount"]))["service"]
        return {"desiredCount": str(service.get("desiredCount"))}

    def confirm(self, client: Any, target: Target, state: Mapping[str, str], request: Mapping[str, str],
                previous: Mapping[str, str], intent: str, started: datetime) -> Applied:
        return _same(state, "desiredCount", request["desiredCount"])

    def inverse_request(self, previous: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
        return {"desiredCount": previous["desiredCount"]}


_REVISION = re.compile(r"(?:^|/)(?P<family>[A-Za-z0-9_-]+):(?P<revision>\d+)$")


def _family_revision(task_definition: str) -> tuple[str, int] | None:
    found = _REVISION.search(task_definition)
    return (found["family"], int(found["revision"])) if found else None


class EcsTaskDefinitionRollback:
    def read(self, client: Any, target: Target, described: Described) -> dict[str, str]:
        state = dict(described.state)
        current = _family_revision(state["taskDefinition"])
        if current is None:
            return {**state, "previousTaskDefinition": ""}
        family, revision = current
        earlier: list[tuple[int, str]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = client.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC",
                                                **({"nextToken": token} if token else {}))
            for arn in page.get("taskDefinitionArns") or []:
                parsed = _family_revision(arn)
                if parsed and parsed[0] == family and parsed[1] < revision:
                    earlier.append((parsed[1], arn))
            token = page.get("nextToken")
            if not token:
                break
        return {**state, "previousTaskDefinition": max(earlier)[1] if earlier else ""}

    def plan(self, client: Any, state: Mapping[str, str], parameters: RemediationParameters,
             target: Target) -> Plan:
        wanted = (self._existing(client, parameters.task_definition) if parameters.task_definition
                  else state["previousTaskDefinition"])
        if not wanted:
            running = state["taskDefinition"].rsplit("/", 1)[-1]
            raise CannotPlan("spec.parameters.taskDefinition",
                             f"service {target.id} runs {running} and its family has no earlier ACTIVE revision: "
                             "there is nothing to roll back to; set parameters.taskDefinition")
        if _family_revision(wanted) == _family_revision(state["taskDefinition"]):
            raise CannotPlan("spec.parameters.taskDefinition",
                             f"service {target.id} already runs {wanted.rsplit('/', 1)[-1]}: nothing would change")
        return Plan((PlannedChange("taskDefinition", state["taskDefinition"], wanted),), {"taskDefinition": wanted})

    @staticmethod
    def _existing(client: Any, task_definition: str) -> str:
        try:
            found = client.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        except ClientError as exc:
            code = (exc.response.get("Error") or {}).get("Code")
            raise CannotPlan("spec.parameters.taskDefinition",
                             f"task definition {task_definition} cannot be described ({code}): name an existing "
                             "family:revision") from None
        return str(found["taskDefinitionArn"])

    def act(self, client: Any, target: Target, request: Mapping[str, str], intent: str) -> dict[str, str]:
        service = client.update_service(cluster=target.cluster, service=target.id,
                                        taskDefinition=request["taskDefinition"])["service"]
        return {"taskDefinition": str(service.get("taskDefinition"))}

    def confirm(self, client: Any, target: Target, state: Mapping[str, str], request: Mapping[str, str],
                previous: Mapping[str, str], intent: str, started: datetime) -> Applied:
        same = _family_revision(state.get("taskDefinition", "")) == _family_revision(request["taskDefinition"])
        return Applied.YES if same else Applied.NO

    def inverse_request(self, previous: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
        return {"taskDefinition": previous["taskDefinition"]}


class RdsReboot:
    def read(self, client: Any, target: Target, described: Described) -> dict[str, str]:
        return dict(described.state)

    def plan(self, client: Any, state: Mapping[str, str], parameters: RemediationParameters,
             target: Target) -> Plan:
        failover = bool(parameters.force_failover)
        if failover and state.get("multiAZ") != "true":
            raise CannotPlan("spec.parameters.forceFailover",
                             f"DB instance {target.name} is not Multi-AZ: there is no standby to fail over to; remove "
                             "forceFailover")
        if state.get("status") != "available":
            raise CannotPlan("spec.target",
                             f"DB instance {target.name} is {state.get('status')}: it can be rebooted only when "
                             "available (assessed again until it is)", waiting=True)
        proposed = "rebooting, failing over to the standby" if failover else "rebooting"
        return Plan((PlannedChange("DB instance status", state["status"], proposed),),
                    {"forceFailover": str(failover).lower()})

    def act(self, client: Any, target: Target, request: Mapping[str, str], intent: str) -> dict[str, str]:
        db = client.reboot_db_instance(DBInstanceIdentifier=target.name,
                                       ForceFailover=request.get("forceFailover") == "true")["DBInstance"]
        return {"status": str(db.get("DBInstanceStatus") or "")}

    def confirm(self, client: Any, target: Target, state: Mapping[str, str], request: Mapping[str, str],
                previous: Mapping[str, str], intent: str, started: datetime) -> Applied:
        if state.get("status") == "rebooting":
            return Applied.YES
        events = client.describe_events(SourceIdentifier=target.name, SourceType="db-instance", StartTime=started)
        rebooted = any(re.search(r"reboot|restarted", str(e.get("Message")), re.IGNORECASE)
                       for e in events.get("Events") or [])
        return Applied.YES if rebooted else Applied.UNKNOWN

    def inverse_request(self, previous: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
        return {}


EXECUTORS: dict[tuple[str, ResourceType], Executor] = {
    ("restart", ResourceType.LAMBDA): LambdaRestart(),
    ("restart", ResourceType.ECS_SERVICE): EcsRestart(),
    ("scale", ResourceType.LAMBDA): LambdaScale(),
    ("scale", ResourceType.ECS_SERVICE): EcsScale(),
    ("rollback", ResourceType.LAMBDA): LambdaAliasRollback(),
    ("rollback", ResourceType.ECS_SERVICE): EcsTaskDefinitionRollback(),
    ("reboot", ResourceType.RDS): RdsReboot(),
}

# Every (action, type) the registry declares has an executor, and no executor is outside the registry.
if set(EXECUTORS) != {(spec.name, t.resource_type) for spec in REGISTRY for t in spec.targets}:
    raise RuntimeError("aws/executors.py and api/actions.REGISTRY disagree on the (action, resource type) pairs")
