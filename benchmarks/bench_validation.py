"""Pure DevOpsProject validation and naming: how cheap the decision logic is."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Timer, scaled
from devops_operator import naming, projects
from devops_operator.api.devopsproject import DevOpsProjectSpec

ENVIRONMENTS = 50
ROUNDS = 200
RENDERS = 20_000


def run(scale: float = 1.0) -> dict[str, Any]:
    environments = scaled(ENVIRONMENTS, scale)
    spec = DevOpsProjectSpec.model_validate({
        "project": "shop", "organization": "acme",
        "environments": [{"name": f"env-{i}", "costThreshold": 100} for i in range(environments)],
    })
    rounds = scaled(ROUNDS, scale)
    with Timer() as timer:
        for _ in range(rounds):
            report = projects.validate_project("shop", spec)
    assert report.valid, report.summary()
    pattern = naming.parse_pattern("{organization}-{project}-{environment}-{resource}")
    renders = scaled(RENDERS, scale)
    with Timer() as render_timer:
        for i in range(renders):
            pattern.render({"organization": "acme", "project": "shop", "environment": "prod", "resource": f"r{i}"})
    return {
        "environments": environments,
        "validate_project_us": round(timer.seconds / rounds * 1e6, 1),
        "render_name_us": round(render_timer.seconds / renders * 1e6, 2),
    }
