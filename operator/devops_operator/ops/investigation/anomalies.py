"""Metric anomalies in an Investigation's window: runs of datapoints far from the series' own baseline.

Robust statistics, so one spike cannot hide itself: the baseline is the lower quartile for metrics where
higher is worse (errors, latency, CPU) and the upper quartile where lower is worse (free memory, traffic
that stops); the spread is the median absolute deviation. A datapoint is anomalous when it is beyond the
baseline by more than three spreads and by more than half the baseline (so a busy but steady series is
not anomalous), and consecutive anomalous datapoints make one anomaly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

MIN_POINTS = 4
SPREADS = 3.0
RELATIVE = 0.5
MAD_TO_SIGMA = 1.4826


class Direction(StrEnum):
    UP = "up"  # higher is worse: spikes are anomalies
    DOWN = "down"  # lower is worse: drops are anomalies


@dataclass(frozen=True)
class MetricSeries:
    metric: str
    resource: str
    statistic: str
    direction: Direction
    points: Sequence[tuple[datetime, float]]  # oldest first
    unit: str = ""


@dataclass(frozen=True)
class Anomaly:
    metric: str
    resource: str
    direction: Direction
    start: datetime
    end: datetime
    peak: float
    peak_at: datetime
    baseline: float
    points: int
    unit: str = ""

    def describe(self) -> str:
        moved = "rose" if self.direction == Direction.UP else "fell"
        unit = f" {self.unit}" if self.unit and self.unit not in ("Count", "None") else ""
        return (f"{self.metric} of {self.resource} {moved} to {_number(self.peak)}{unit} "
                f"(baseline {_number(self.baseline)}{unit}) over {self.points} datapoint(s)")


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _quantile(ordered: Sequence[float], fraction: float) -> float:
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _median(values: Sequence[float]) -> float:
    return _quantile(sorted(values), 0.5)


def find_anomalies(series: MetricSeries) -> list[Anomaly]:
    points = list(series.points)
    if len(points) < MIN_POINTS:
        return []
    values = [value for _, value in points]
    ordered = sorted(values)
    up = series.direction == Direction.UP
    baseline = _quantile(ordered, 0.25 if up else 0.75)
    spread = MAD_TO_SIGMA * _median([abs(v - _median(values)) for v in values])
    margin = max(SPREADS * spread, RELATIVE * abs(baseline), 1e-9)

    def anomalous(value: float) -> bool:
        return value > baseline + margin if up else value < baseline - margin

    found: list[Anomaly] = []
    run: list[tuple[datetime, float]] = []
    for point in [*points, None]:
        if point is not None and anomalous(point[1]):
            run.append(point)
            continue
        if run:
            peak_at, peak = (max if up else min)(run, key=lambda p: p[1])
            found.append(Anomaly(series.metric, series.resource, series.direction, run[0][0], run[-1][0],
                                 peak, peak_at, baseline, len(run), series.unit))
            run = []
    return found


def find_all(series: Sequence[MetricSeries]) -> list[Anomaly]:
    """Every series' anomalies, earliest first."""
    return sorted((a for s in series for a in find_anomalies(s)), key=lambda a: (a.start, a.metric))
