"""Which targets exist in AWS, from each type's existence checks in the registry (counted calls).

Per (type, region, scope): up to `DESCRIBE_LIMIT` targets are described one call each; more are matched
against one paged listing of the type (`Inventory`), which costs a call per page instead of per
resource. A listing also maps each resource to the identifier CloudWatch uses (a REST API's name for its
id). A target that does not exist gets no metric query: its metrics could only come back empty.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from devops_operator.ops.health.calls import CallCounter, ClientFor
from devops_operator.ops.health.registry import TYPES, Describe, Inventory
from devops_operator.ops.health.targets import Target

DESCRIBE_LIMIT = 3
MAX_PAGES = 1000  # a listing longer than this is a loop in the API's paging, not an estate

TargetKey = tuple[str, str, str | None, str | None, str | None]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(client: Any, check: Describe, target: Target, counter: CallCounter) -> str | None:
    try:
        response = counter.call(client, check.operation, **check.params(target))
    except ClientError as exc:
        if _code(exc) in check.missing_codes:
            return None
        raise
    return target.id if check.found(response) else None


def _inventory(client: Any, listing: Inventory, scope: dict[str, Any], counter: CallCounter) -> dict[str, str]:
    """Every identifier of every resource in the listing -> the identifier CloudWatch uses."""
    known: dict[str, str] = {}
    params: dict[str, Any] = {**listing.page_params, **scope}
    for _ in range(MAX_PAGES):
        try:
            page = counter.call(client, listing.operation, **params)
        except ClientError as exc:
            if _code(exc) in listing.scope_missing_codes:
                return {}
            raise
        for item in page.get(listing.items) or []:
            cloudwatch_id = listing.cloudwatch_id_of(item)
            for key in listing.keys_of(item):
                if key:
                    known[key] = cloudwatch_id
        token = page.get(listing.token_key)
        if not token:
            break
        params[listing.token_param] = token
    return known


def existing(client_for: ClientFor, targets: Sequence[Target], counter: CallCounter) -> dict[TargetKey, str | None]:
    """Each target's CloudWatch identifier, or None when it does not exist (only targets that ask)."""
    groups: dict[tuple[str, str | None, tuple[tuple[str, Any], ...]], list[Target]] = defaultdict(list)
    for target in targets:
        if target.check_existence:
            scope = tuple(sorted(TYPES[target.type].inventory.scope(target).items()))
            groups[(str(target.type), target.region, scope)].append(target)
    found: dict[TargetKey, str | None] = {}
    for (_type, region, scope), members in groups.items():
        info = TYPES[members[0].type]
        if info.describe is not None and len(members) <= DESCRIBE_LIMIT:
            client = client_for(info.describe.service, region)
            for target in members:
                found[target.key] = _describe(client, info.describe, target, counter)
            continue
        known = _inventory(client_for(info.inventory.service, region), info.inventory, dict(scope), counter)
        for target in members:
            found[target.key] = known.get(target.id) or (known.get(target.arn) if target.arn else None)
    return found
