"""The 55-resource fixture plan summarised and rendered (registry + DEPLOYED.md): time and peak memory;
plans generated from its shapes up to 5,000 resources, to show the cost stays linear."""

from __future__ import annotations

import copy
import json
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.harness import Timer, scaled
from devops_operator.deploy import registry
from devops_operator.terraform.planjson import state_resources, summarize_plan

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "terraform" / "plan-55-aws-resources.tf0.12.json"


def generated(plan: dict[str, Any], count: int) -> dict[str, Any]:
    """A plan of `count` resources made from the fixture's shapes (addresses made unique)."""
    changes, planned = plan["resource_changes"], plan["planned_values"]["root_module"]["resources"]
    out = copy.deepcopy(plan)
    out["resource_changes"], out["planned_values"]["root_module"]["resources"] = [], []
    for index in range(count):
        change, value = copy.deepcopy(changes[index % len(changes)]), copy.deepcopy(planned[index % len(planned)])
        suffix = f"_{index // len(changes)}"
        for item in (change, value):
            item["name"] = f"{item['name']}{suffix}"
            item["address"] = f"{item['type']}.{item['name']}"
        value.setdefault("values", {})["id"] = f"id-{index}"
        out["resource_changes"].append(change)
        out["planned_values"]["root_module"]["resources"].append(value)
    return out


def measure(plan: dict[str, Any]) -> dict[str, Any]:
    tracemalloc.start()
    with Timer() as timer:
        summary = summarize_plan(plan)
        resources = state_resources({"format_version": "1.0", "values": plan["planned_values"]},
                                    default_region="us-east-1")
        document = registry.record_apply(None, deployment="bench/plan", resources=resources,
                                         changes=list(summary.changes), plan_id="p", revision="r",
                                         engine="terraform", at="t")
        rendered = registry.render_deployed_md(document, title="bench")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(summary.changes) == len(plan["resource_changes"]) == len(resources)
    return {"resources": len(resources), "ms": round(timer.seconds * 1000, 2), "peak_mib": round(peak / 2**20, 2),
            "deployed_md_bytes": len(rendered.encode()), "registry_json_bytes": len(json.dumps(document))}


def run(scale: float = 1.0) -> dict[str, Any]:
    plan = json.loads(FIXTURE.read_text())
    fixture = measure(plan)
    sizes = sorted({scaled(size, scale) for size in (500, 1000, 2500, 5000)})
    runs = [measure(generated(plan, size)) for size in sizes]
    per_resource = [round(r["ms"] / r["resources"], 4) for r in runs]
    return {"fixture_55": fixture, "generated": runs, "ms_per_resource": per_resource}
