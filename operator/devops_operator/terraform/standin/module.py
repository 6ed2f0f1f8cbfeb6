"""A root module as the stand-in understands it: variables, locals, one AWS provider, resources, outputs.

Files are parsed with python-hcl2 (`*.tf`) or json (`*.tf.json`, Terraform's JSON syntax); every
construct the stand-in cannot run is refused here, before anything is planned, with one line naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from devops_operator.terraform.standin.errors import ModuleError
from devops_operator.terraform.standin.expressions import EvaluationError, Unsupported, references, unquote
from devops_operator.terraform.standin.resources import TYPES

# Meta-arguments and blocks refused inside a resource, with how the refusal names them.
UNSUPPORTED_META = {"count": "count", "for_each": "for_each", "provisioner": "provisioners",
                    "dynamic": "dynamic blocks", "lifecycle": "lifecycle blocks", "provider": "provider aliases",
                    "connection": "connection blocks"}
UNSUPPORTED_TOP = {"module": "modules", "data": "data sources", "moved": "moved blocks", "import": "import blocks",
                   "check": "check blocks", "removed": "removed blocks", "ephemeral": "ephemeral resources"}
PROVIDER_ARGUMENTS = {"region", "default_tags", "endpoints", "access_key", "secret_key", "skip_credentials_validation",
                      "skip_requesting_account_id", "skip_metadata_api_check", "s3_use_path_style", "profile"}
BACKENDS = {"kubernetes", "local"}


@dataclass
class Variable:
    name: str
    type: str | None = None
    default: Any = None
    has_default: bool = False
    sensitive: bool = False


@dataclass
class Resource:
    type: str
    name: str
    body: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"


@dataclass
class Output:
    name: str
    value: Any
    sensitive: bool = False


@dataclass
class Module:
    directory: Path
    variables: dict[str, Variable] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)
    provider: dict[str, Any] = field(default_factory=dict)
    backend: tuple[str, dict[str, Any]] | None = None

    def order(self) -> list[Resource]:
        """Resources in dependency order (references, also through locals, and depends_on)."""
        local_refs = {name: references(value) for name, value in self.locals.items()}

        def deps(value: Any, seen: frozenset[str] = frozenset()) -> set[str]:
            found = set()
            for root, name in references(value):
                if root == "local" and name in local_refs and name not in seen:
                    found |= deps(self.locals[name], seen | {name})
                elif f"{root}.{name}" in self.resources:
                    found.add(f"{root}.{name}")
            return found

        graph = {a: deps(r.body) | set(r.depends_on) for a, r in self.resources.items()}
        ordered: list[str] = []
        visiting: set[str] = set()

        def visit(address: str) -> None:
            if address in ordered:
                return
            if address in visiting:
                raise ModuleError(f"Error: Cycle: {address} depends on itself through its references")
            visiting.add(address)
            for dependency in sorted(graph[address]):
                visit(dependency)
            visiting.discard(address)
            ordered.append(address)

        for address in sorted(graph):
            visit(address)
        return [self.resources[a] for a in ordered]

    def dependencies(self, resource: Resource) -> list[str]:
        return sorted(a for a in (f"{r}.{n}" for r, n in references(resource.body)) if a in self.resources)


def _json_value(value: Any) -> Any:
    """Terraform's JSON syntax: strings are templates; turn them into the text form python-hcl2 gives."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _json_blocks(document: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A `.tf.json` file in python-hcl2's shape (labels quoted, each block in a list)."""
    shaped: dict[str, list[Any]] = {}
    for key, value in document.items():
        if key == "terraform":
            block = dict(value)
            if "backend" in block:
                block["backend"] = [{f'"{t}"': _json_value(c) for t, c in block["backend"].items()}]
            shaped.setdefault("terraform", []).append(block)
        elif key == "locals":
            shaped.setdefault("locals", []).append(_json_value(value))
        elif key in ("variable", "output", "provider", "module", "data"):
            shaped.setdefault(key, []).append({f'"{n}"': _json_value(b) for n, b in value.items()})
        elif key == "resource":
            shaped.setdefault(key, []).append(
                {f'"{t}"': {f'"{n}"': _json_value(b) for n, b in blocks.items()} for t, blocks in value.items()})
        else:
            shaped.setdefault(key, []).append(value)
    return shaped


def _parse_files(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    parsed = []
    files = sorted(directory.glob("*.tf")) + sorted(directory.glob("*.tf.json"))
    if not files:
        raise ModuleError(f"Error: No configuration files in {directory}: the source holds no .tf files there")
    for path in files:
        try:
            if path.name.endswith(".tf.json"):
                parsed.append((path.name, _json_blocks(json.loads(path.read_text()))))
            else:
                parsed.append((path.name, hcl2.loads(path.read_text())))
        except Exception as exc:  # the parser's own errors: one line naming the file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModuleError(f"Error: {path.name}: cannot parse: {first}") from exc
    return parsed


def _blocks(value: Any) -> list[dict[str, Any]]:
    return [b for b in (value if isinstance(value, list) else [value]) if isinstance(b, dict)]


def load_module(directory: Path) -> Module:
    """Parse and check a root module; Unsupported or ModuleError name what is wrong."""
    module = Module(directory=directory)
    for filename, document in _parse_files(directory):
        for key in document:
            if key in UNSUPPORTED_TOP:
                raise Unsupported(UNSUPPORTED_TOP[key], filename)
        for block in document.get("variable", []):
            for raw_name, body in block.items():
                name = unquote(raw_name)
                module.variables[name] = Variable(
                    name=name, type=str(body.get("type")) if body.get("type") is not None else None,
                    default=body.get("default"), has_default="default" in body,
                    sensitive=body.get("sensitive") is True)
                if "validation" in body:
                    raise Unsupported(f"validation blocks (variable {name})", filename)
        for block in document.get("locals", []):
            module.locals.update({k: v for k, v in block.items() if k != "__is_block__"})
        for block in document.get("provider", []):
            for raw_name, body in block.items():
                name = unquote(raw_name)
                if name != "aws":
                    raise Unsupported(f"the provider {name!r} (only aws)", filename)
                if "alias" in body:
                    raise Unsupported("provider aliases", filename)
                unknown = sorted(set(body) - PROVIDER_ARGUMENTS - {"__is_block__"})
                if unknown:
                    raise Unsupported(f"the aws provider argument {unknown[0]!r}", filename)
                module.provider = {k: v for k, v in body.items() if k != "__is_block__"}
        for block in document.get("terraform", []):
            for backend in _blocks(block.get("backend", [])):
                for raw_type, config in backend.items():
                    backend_type = unquote(raw_type)
                    if backend_type not in BACKENDS:
                        raise Unsupported(f"the {backend_type!r} backend (only kubernetes and local)", filename)
                    module.backend = (backend_type, {k: v for k, v in config.items() if k != "__is_block__"})
        for block in document.get("resource", []):
            for raw_type, named in block.items():
                resource_type = unquote(raw_type)
                for raw_name, body in named.items():
                    _add_resource(module, resource_type, unquote(raw_name), body, filename)
        for block in document.get("output", []):
            for raw_name, body in block.items():
                name = unquote(raw_name)
                if "value" not in body:
                    raise ModuleError(f"Error: {filename}: output {name!r} has no value")
                module.outputs[name] = Output(name=name, value=body["value"], sensitive=body.get("sensitive") is True)
    _check_references(module)
    return module


def _add_resource(module: Module, resource_type: str, name: str, body: dict[str, Any], filename: str) -> None:
    address = f"{resource_type}.{name}"
    if resource_type not in TYPES:
        raise Unsupported(f"the resource type {resource_type} ({address})", filename)
    for meta, what in UNSUPPORTED_META.items():
        if meta in body:
            raise Unsupported(f"{what} ({address})", filename)
    spec = TYPES[resource_type]
    arguments = {k: v for k, v in body.items() if k not in ("__is_block__", "depends_on")}
    unknown = sorted(set(arguments) - set(spec.arguments))
    if unknown:
        raise Unsupported(f"the argument {unknown[0]!r} of {resource_type} ({address})", filename)
    missing = [arg for arg in spec.required if arg not in arguments]
    if missing:
        raise ModuleError(f'Error: {filename}: Missing required argument: {address}: "{missing[0]}" is required')
    depends = [str(d).strip("${}\" ") for d in body.get("depends_on") or []]
    if address in module.resources:
        raise ModuleError(f"Error: {filename}: Duplicate resource {address}")
    module.resources[address] = Resource(type=resource_type, name=name, body=arguments, depends_on=depends)


def _check_references(module: Module) -> None:
    """References to things that do not exist fail validate, as Terraform's do."""
    values: list[tuple[str, Any]] = [(r.address, r.body) for r in module.resources.values()]
    values += [(f"output.{o.name}", o.value) for o in module.outputs.values()]
    values += [(f"local.{k}", v) for k, v in module.locals.items()]
    for where, value in values:
        try:
            refs = references(value)
        except EvaluationError as exc:
            raise ModuleError(f"Error: {where}: {exc}") from exc
        for root, name in refs:
            if root == "var" and name not in module.variables:
                raise ModuleError(f'Error: Reference to undeclared input variable "{name}" (in {where})')
            if root == "local" and name not in module.locals:
                raise ModuleError(f'Error: Reference to undeclared local value "{name}" (in {where})')
            if root in ("data", "module"):
                raise Unsupported("data sources" if root == "data" else "modules", where)
            if root in ("count", "each"):
                raise Unsupported(f"{root}.{name}", where)
            if root.startswith("aws_") and f"{root}.{name}" not in module.resources:
                if root in TYPES:
                    raise ModuleError(f'Error: Reference to undeclared resource "{root}" "{name}" (in {where})')
                raise Unsupported(f"the resource type {root} ({root}.{name})", where)
