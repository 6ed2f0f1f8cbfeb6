"""`python -m devops_operator`: run the operator with kopf, configured from the environment."""

from __future__ import annotations

import kopf

from devops_operator import handlers  # noqa: F401  (registers the handlers and the start-up hook)
from devops_operator.config import OperatorConfig


def main() -> None:
    config = OperatorConfig.from_env()
    kopf.configure(verbose=False)
    kopf.run(
        clusterwide=not config.watch_namespaces,
        namespaces=config.watch_namespaces,
        standalone=not config.peering,
        liveness_endpoint=config.liveness_endpoint or None,
        memo=kopf.Memo(config=config),
    )
