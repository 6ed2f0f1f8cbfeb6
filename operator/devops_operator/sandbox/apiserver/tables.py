"""Server-side printing: ``meta.k8s.io`` Tables, as ``kubectl get`` asks for them."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devops_operator.sandbox.apiserver import jsonpath
from devops_operator.sandbox.apiserver.metadata import parse_timestamp

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": ("CreationTimestamp is a timestamp representing the server time when this object was created."),
    "priority": 0,
}
DEFAULT_COLUMNS = ({**AGE_COLUMN, "jsonPath": ".metadata.creationTimestamp"},)


def requested_table_version(accept: str | None) -> str | None:
    """``v1``/``v1beta1`` if the Accept header asks for a ``meta.k8s.io`` Table, else ``None``."""
    for media_range in (accept or "").split(","):
        params = dict(part.strip().split("=", 1) for part in media_range.split(";")[1:] if "=" in part)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return params.get("v", "v1")
    return None


def _human_days(days: int, hours: int) -> str:
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        years, rest = divmod(days, 365)
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{days // 365}y"


def human_age(seconds: float) -> str:
    """Durations the way kubectl prints ages: ``45s``, ``5m``, ``3h20m``, ``2d4h``, ``1y30d``."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return _human_days(hours // 24, hours)


def _age_of(value: Any, now: datetime.datetime) -> str | None:
    moment = parse_timestamp(value)
    return None if moment is None else human_age((now - moment).total_seconds())


def _cell(obj: Mapping[str, Any], column: Mapping[str, Any], now: datetime.datetime) -> Any:
    try:
        values = jsonpath.evaluate(obj, column.get("jsonPath", ""))
    except jsonpath.JsonPathError:
        return None
    if not values or values[0] is None:
        return None
    value = values[0]
    if column.get("type") == "date":
        return _age_of(value, now)
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _column_definition(column: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": column.get("name", ""),
        "type": column.get("type", "string"),
        "format": column.get("format", ""),
        "description": column.get("description", ""),
        "priority": column.get("priority", 0),
    }


def _row_object(obj: Mapping[str, Any], include_object: str, table_api_version: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return dict(obj)
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": table_api_version,
        "metadata": obj.get("metadata", {}),
    }


def build_table(
    objects: Sequence[Mapping[str, Any]],
    printer_columns: Sequence[Mapping[str, Any]] | None,
    *,
    version: str = "v1",
    include_object: str = "Metadata",
    resource_version: str = "",
) -> dict[str, Any]:
    """A Table with Name plus the printer columns (or Age when the resource declares none)."""
    columns = list(printer_columns) if printer_columns else list(DEFAULT_COLUMNS)

    def cells(obj: Mapping[str, Any], now: datetime.datetime) -> list[Any]:
        return [obj.get("metadata", {}).get("name"), *(_cell(obj, column, now) for column in columns)]

    definitions = [NAME_COLUMN, *(_column_definition(column) for column in columns)]
    return build_printed_table(objects, definitions, cells, version=version, include_object=include_object,
                               resource_version=resource_version)


def build_printed_table(
    objects: Sequence[Mapping[str, Any]],
    column_definitions: Sequence[Mapping[str, Any]],
    cells: Callable[[Mapping[str, Any], datetime.datetime], list[Any]],
    *,
    version: str = "v1",
    include_object: str = "Metadata",
    resource_version: str = "",
) -> dict[str, Any]:
    """A Table whose rows ``cells`` computes (built-in kinds have printers of their own)."""
    api_version = f"meta.k8s.io/{version}"
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj, now)}
        row_object = _row_object(obj, include_object, api_version)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [dict(column) for column in column_definitions],
        "rows": rows,
    }
