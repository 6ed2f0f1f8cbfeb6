"""InfraDeployment dependencies (`spec.dependsOn`): cycles and readiness, decided over plain data (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

DeploymentKey = str  # "namespace/name"


def find_cycle(start: DeploymentKey, depends_on: Callable[[DeploymentKey], Sequence[DeploymentKey]]) -> list[str]:
    """The first dependency cycle reachable from `start`, as the path that closes it (a, b, a); [] if none.

    `depends_on` gives a deployment's direct dependencies (what its spec.dependsOn names); deployments
    that do not exist have none. Depth-first with an explicit stack, so deep chains cannot overflow.
    """
    path: list[DeploymentKey] = []
    on_path: set[DeploymentKey] = set()
    done: set[DeploymentKey] = set()
    stack: list[tuple[DeploymentKey, int]] = [(start, 0)]
    while stack:
        node, index = stack.pop()
        if index == 0:
            if node in on_path:
                return [*path[path.index(node):], node]
            if node in done:
                continue
            path.append(node)
            on_path.add(node)
        children = list(depends_on(node))
        if index < len(children):
            stack.append((node, index + 1))
            stack.append((children[index], 0))
            continue
        path.pop()
        on_path.discard(node)
        done.add(node)
    return []


def not_ready(dependencies: Sequence[DeploymentKey], ready: Mapping[DeploymentKey, bool | None]) -> list[str]:
    """The dependencies that are not Ready, each with why: missing (None in `ready`) or not Ready yet."""
    waiting = []
    for key in dependencies:
        state = ready.get(key)
        if state is None:
            waiting.append(f"{key} (does not exist)")
        elif not state:
            waiting.append(f"{key} (not Ready)")
    return waiting
