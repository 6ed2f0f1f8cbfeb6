"""`python -m devops_operator.runner STEP`: the runner Job's command."""

import signal
import sys
from types import FrameType

# A pod deleted while Python still imports the runner gets its SIGTERM before the runner's own handler is
# installed, and the default action would end it without a report. Note the signal here; main() acts on it.
early_signals: list[int] = []


def _note(signum: int, frame: FrameType | None) -> None:
    early_signals.append(signum)


signal.signal(signal.SIGTERM, _note)
signal.signal(signal.SIGINT, _note)

from devops_operator.runner.main import main  # noqa: E402  (imported once the signals are noted)

sys.exit(main(early_signals=early_signals))
