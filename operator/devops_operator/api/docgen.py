"""Render docs/crd-reference.md from the CRDs that crdgen renders: docs and schema never disagree.

`python -m devops_operator.api.docgen --out docs/crd-reference.md` writes it; `--check` exits 1
when the file is stale (`make crds-check` runs both checks).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from devops_operator.api import ALL_KINDS
from devops_operator.api.common import GROUP_VERSION, KindInfo
from devops_operator.api.crdgen import render_crd

HEADER = (
    "# CRD reference\n\n"
    "Generated from the API models by `make crds` (`python -m devops_operator.api.docgen`); do not edit.\n"
    f"Every kind is `{GROUP_VERSION}`, namespaced, in the `devops` category.\n"
)


def _type_of(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
        return "any"
    kind = str(node.get("type", "object"))
    if kind == "array":
        return f"[]{_type_of(node.get('items') or {})}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type_of(node['additionalProperties'])}"
    return kind


def _constraints(node: dict[str, Any]) -> str:
    notes = []
    if "enum" in node:
        notes.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    for key, label in (("pattern", "pattern"), ("minimum", "min"), ("maximum", "max"), ("minLength", "min length"),
                       ("maxLength", "max length"), ("minItems", "min items"), ("maxItems", "max items")):
        if key in node:
            value = f"`{node[key]}`" if key == "pattern" else str(node[key])
            notes.append(f"{label} {value}")
    return "; ".join(notes)


def _rows(node: dict[str, Any], path: str, required: bool) -> Iterator[str]:
    if path:
        default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
        description = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
        constraints = _constraints(node)
        if constraints:
            description = f"{description} ({constraints})" if description else constraints
        yield (f"| `{path}` | {_type_of(node)} | {'yes' if required else ''} | {default} | "
               f"{description} |")
    children: dict[str, Any] = node.get("properties") or {}
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        children = (node["items"].get("properties") or {})
        needed = set(node["items"].get("required") or [])
        prefix = f"{path}[]"
    else:
        needed = set(node.get("required") or [])
        prefix = path
    for name in children:
        yield from _rows(children[name], f"{prefix}.{name}" if prefix else name, name in needed)


def render_kind(kind: KindInfo) -> str:
    crd = render_crd(kind)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    lines = [f"## {kind.kind}", "", kind.description, "",
             f"`kubectl get {kind.plural}` (short: {', '.join(f'`{s}`' for s in kind.short_names)})", ""]
    for part in ("spec", "status"):
        lines += [f"### {kind.kind}.{part}", "", "| field | type | required | default | description |",
                  "|---|---|---|---|---|"]
        lines += list(_rows(schema.get(part) or {}, "", False))
        lines.append("")
    columns = version.get("additionalPrinterColumns") or []
    lines += ["Printer columns: " + ", ".join(c["name"] for c in columns), ""]
    return "\n".join(lines)


def render_reference() -> str:
    return HEADER + "\n" + "\n".join(render_kind(kind) for kind in ALL_KINDS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/crd-reference.md"), help="Markdown file to write.")
    parser.add_argument("--check", action="store_true", help="Exit 1 when the file is stale; write nothing.")
    args = parser.parse_args(argv)
    expected = render_reference()
    if args.check:
        current = args.out.read_text() if args.out.exists() else None
        if current != expected:
            print(f"stale: {args.out} (run `make crds`)", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(expected)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
