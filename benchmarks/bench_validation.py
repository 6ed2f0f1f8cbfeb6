"""Pure DevOpsProject validation and naming: how cheap the decision logic is."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Timer
from devops_operator import naming, projects
from devops_operator.api.devopsproject import DevOpsProjectSpec


def run() -> dict[str, Any]:
    spec = DevOpsProjectSpec.model_validate({
        "project": "shop", "organization": "acme",
        "environments": [{"name": f"env-{i}", "costThreshold": 100} for i in range(50)],
    })
    rounds = 200
    with Timer() as timer:
        for _ in range(rounds):
            report = projects.validate_project("shop", spec, lambda name: None)
    assert report.valid
    pattern = naming.parse_pattern("{organization}-{project}-{environment}-{resource}")
    renders = 20_000
    with Timer() as render_timer:
        for i in range(renders):
            pattern.render({"organization": "acme", "project": "shop", "environment": "prod", "resource": f"r{i}"})
    return {
        "validate_50_environments_us": round(timer.seconds / rounds * 1e6, 1),
        "render_name_us": round(render_timer.seconds / renders * 1e6, 2),
    }
