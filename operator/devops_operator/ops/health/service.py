"""`check_resources`: the health of a list of targets, from existence checks and batched GetMetricData.

The one function that reads AWS for health. The HealthCheck controller calls it every interval; a
Remediation's post-action verification calls it for the one resource it acted on (no HealthCheck needed).

1. Problems no call could fix (a metric CloudWatch never had, a window older than CloudWatch keeps at
   the metric's period, an SLO window no period covers) raise `CheckSpecError` before any call.
2. Targets that ask for it are checked for existence (`existence.existing`); a missing one is NOT_FOUND
   and gets no metric query.
3. Every raw series of every existing target (rates read their numerator and denominator) is one query;
   all go through `aws.cloudwatch.fetch_metrics` (at most 500 per request, pages followed, cost counted):
   one range covering the window and the previous window (the performance comparison), and one per SLO
   span.
4. Verdicts, trends and SLOs are computed by the pure modules; resources come back worst first.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from devops_operator.api.healthcheck import (
    EvaluationWindow,
    HealthCheckSpec,
    MissingDataPolicy,
    SloGoodCondition,
    SloSpec,
    TypeMetrics,
    Verdict,
)
from devops_operator.aws.cloudwatch import FetchStats, MetricQuery, fetch_metrics
from devops_operator.durations import parse_duration
from devops_operator.ops.health import existence, performance, slo
from devops_operator.ops.health.calls import CallCounter, ClientFor
from devops_operator.ops.health.evaluate import (
    MetricVerdict,
    Point,
    ResourceVerdict,
    breaches,
    derive_rate,
    evaluate_metric,
    overall_verdict,
    resource_verdict,
    severity,
    window_total,
)
from devops_operator.ops.health.resolve import (
    MetricProblem,
    ResolvedMetric,
    SeriesKey,
    metric_problems,
    resolve_metrics,
)
from devops_operator.ops.health.targets import Target
from devops_operator.ops.health.windows import TimeWindow, WindowError, check_window, floor_minute, retention_problem
from devops_operator.projectrefs import ProjectAccess
from devops_operator.runtime import Runtime


@dataclass(frozen=True)
class CheckSettings:
    """How to judge: the window, missing data, metric overrides per type, SLOs and percentiles."""

    window: EvaluationWindow = field(default_factory=EvaluationWindow)
    missing_data: MissingDataPolicy = MissingDataPolicy.NO_DATA
    metrics: tuple[TypeMetrics, ...] = ()
    slos: tuple[SloSpec, ...] = ()
    percentiles: tuple[str, ...] = ()
    compare_previous: bool = True

    @classmethod
    def from_spec(cls, spec: HealthCheckSpec) -> CheckSettings:
        return cls(window=spec.window, missing_data=MissingDataPolicy(spec.missing_data),
                   metrics=tuple(spec.metrics), slos=tuple(spec.slos),
                   percentiles=tuple(str(p) for p in spec.performance.percentiles))

    def type_metrics(self, target: Target) -> tuple[TypeMetrics | None, str]:
        for index, entry in enumerate(self.metrics):
            if str(entry.type) == str(target.type):
                return entry, f"spec.metrics[{index}]"
        return None, ""


class CheckSpecError(ValueError):
    """What to judge cannot be read, whatever AWS answers; nothing was called."""

    def __init__(self, problems: Sequence[MetricProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = list(problems)


@dataclass
class ResourceResult:
    target: Target
    verdict: ResourceVerdict
    metrics: list[ResolvedMetric] = field(default_factory=list)
    trends: list[performance.Trend] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.verdict.verdict != Verdict.NOT_FOUND

    def metric(self, name: str) -> ResolvedMetric | None:
        return next((m for m in self.metrics if m.name == name), None)


@dataclass
class SloOutcome:
    spec: SloSpec
    target: str | None
    period: int | None
    result: slo.SloResult


@dataclass
class CheckResult:
    window: TimeWindow
    resources: list[ResourceResult]
    verdict: Verdict
    slos: list[SloOutcome]
    fetch: FetchStats
    calls: CallCounter
    previous: TimeWindow | None
    cpu_seconds: float = 0.0
    duration_seconds: float = 0.0

    @property
    def requests(self) -> int:
        """Every AWS request of the check: GetMetricData pages and the counted other calls."""
        return self.fetch.requests + self.calls.total

    @property
    def retries(self) -> int:
        return self.fetch.retries + self.calls.retries

    def counts(self) -> dict[str, int]:
        tally = {v: 0 for v in Verdict}
        for resource in self.resources:
            tally[resource.verdict.verdict] += 1
        return {str(k): n for k, n in tally.items()}


# --- problems found before any call -----------------------------------------------------------------


def _window_field(settings: CheckSettings) -> str:
    return "spec.window.anchor.at" if settings.window.anchor is not None else "spec.window.lastMinutes"


def settings_problems(targets: Sequence[Target], settings: CheckSettings, now: datetime) -> list[MetricProblem]:
    """Everything about these targets and settings that cannot work, whatever AWS answers."""
    problems: dict[tuple[str, str], MetricProblem] = {}

    def add(problem: MetricProblem) -> None:
        problems.setdefault((problem.field, problem.message), problem)

    for problem in metric_problems(settings.metrics, targets):
        add(problem)
    try:
        window = check_window(settings.window, now)
    except WindowError as exc:
        add(MetricProblem(exc.field, str(exc).split(": ", 1)[1]))
        return list(problems.values())
    for target in targets:
        type_metrics, type_field = settings.type_metrics(target)
        for metric in resolve_metrics(target, type_metrics, settings.missing_data, type_field):
            why = retention_problem(window, metric.period, now)
            if why is None:
                continue
            if metric.field:
                add(MetricProblem(f"{metric.field}.period", f"{metric.name}: {why} ({_window_field(settings)})"))
            else:
                add(MetricProblem(_window_field(settings), f"{metric.name}, a default of {target.type} targets "
                                  f"(period {metric.period} s): {why}; a default's period is overridden in "
                                  "spec.metrics"))
    by_ref = _targets_by_ref(targets)
    for index, spec in enumerate(settings.slos):
        where = f"spec.slos[{index}]"
        measured = by_ref.get(spec.target)
        if measured is None:
            continue  # a discovered target may come and go: reported in the SLO's status, not a spec error
        type_metrics, type_field = settings.type_metrics(measured)
        metrics = {m.name: m for m in resolve_metrics(measured, type_metrics, settings.missing_data, type_field)}
        slo_metric = metrics.get(spec.metric)
        if slo_metric is None:
            add(MetricProblem(f"{where}.metric", f"{spec.metric!r} is not a metric evaluated for {spec.target} "
                              f"(evaluated: {', '.join(sorted(metrics)) or 'none'}): add it to spec.metrics or "
                              "the target's metrics"))
            continue
        length = parse_duration(spec.window)
        if slo.slo_period(length, slo_metric.period) is None:
            add(MetricProblem(f"{where}.window", f"no CloudWatch period of at least {slo_metric.period} s is kept for "
                              f"{spec.window} at {slo.MAX_SLO_POINTS} datapoints per query: shorten the window"))
    return list(problems.values())


def _targets_by_ref(targets: Sequence[Target]) -> dict[str, Target]:
    refs: dict[str, Target] = {}
    for target in targets:
        refs.setdefault(target.id, target)
    for target in targets:
        refs[target.name] = target
    return refs


# --- reading ----------------------------------------------------------------------------------------

SeriesRef = tuple[str | None, SeriesKey]  # (region, series)


def read_series(client_for: ClientFor, series: Sequence[SeriesRef], start: datetime,
                end: datetime) -> tuple[dict[SeriesRef, list[Point]], FetchStats]:
    """Every series' datapoints between start and end: one fetch_metrics per region (≤500 per request).

    The reusable seam for anything else that judges CloudWatch series (right-sizing, investigations).
    """
    by_region: dict[str | None, list[SeriesKey]] = defaultdict(list)
    for region, key in dict.fromkeys(series):
        by_region[region].append(key)
    points: dict[SeriesRef, list[Point]] = {}
    stats = FetchStats()
    for region, keys in by_region.items():
        queries = [
            MetricQuery(id=f"q{index}", namespace=key.namespace, metric_name=key.metric_name,
                        dimensions=key.dimensions, stat=key.statistic, period=key.period, unit=key.unit)
            for index, key in enumerate(keys)
        ]
        found, fetched = fetch_metrics(client_for("cloudwatch", region), queries, start, end)
        stats.add(fetched)
        for index, key in enumerate(keys):
            answer = found[f"q{index}"]
            points[(region, key)] = [(_utc(at), value) for at, value in answer.points()]
    return points, stats


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def runtime_clients(runtime: Runtime, access: ProjectAccess) -> ClientFor:
    """Clients of the project's environment (in another region where a target says so)."""
    def client_for(service: str, region: str | None) -> Any:
        return runtime.aws.client(access.key, access.environment.name, service, region=region)
    return client_for


# --- the check --------------------------------------------------------------------------------------


def check_resources(runtime: Runtime, access: ProjectAccess, targets: Sequence[Target], settings: CheckSettings,
                    *, now: datetime | None = None, calls: CallCounter | None = None) -> CheckResult:
    """The health of `targets` in the project's environment (see the module docstring)."""
    home = runtime.aws.target(access.key, access.environment.name).region
    # A target in the environment's own region shares its requests with those that name no region.
    local = [replace(t, region=None) if t.region == home else t for t in targets]
    return check_with_clients(runtime_clients(runtime, access), local, settings, now=now, calls=calls)


def check_with_clients(client_for: ClientFor, targets: Sequence[Target], settings: CheckSettings, *,
                       now: datetime | None = None, calls: CallCounter | None = None) -> CheckResult:
    """`check_resources` with the clients given (benchmarks and tests pass their own)."""
    started, cpu_started = time.perf_counter(), time.thread_time()
    now = now or datetime.now(UTC)
    problems = settings_problems(targets, settings, now)
    if problems:
        raise CheckSpecError(problems)
    counter = calls or CallCounter()
    window = check_window(settings.window, now)

    ids = existence.existing(client_for, targets, counter)
    present: list[tuple[Target, list[ResolvedMetric]]] = []
    results: dict[tuple[Any, ...], ResourceResult] = {}
    for target in targets:
        if target.check_existence and ids.get(target.key) is None:
            why = f"does not exist in AWS ({target.describe()}): no metric is read for it"
            results[target.key] = ResourceResult(target, resource_verdict([], exists=False, missing_reason=why))
            continue
        resolved_id = ids.get(target.key) or target.id
        if resolved_id != target.id:
            target = replace(target, id=resolved_id)
        type_metrics, type_field = settings.type_metrics(target)
        present.append((target, resolve_metrics(target, type_metrics, settings.missing_data, type_field)))

    previous = window.previous() if settings.compare_previous else None
    if previous is not None and any(
        retention_problem(previous, m.period, now) for _, metrics in present for m in metrics
    ):
        previous = None  # the previous window is older than CloudWatch keeps: compare nothing
    wanted: list[SeriesRef] = []
    for target, metrics in present:
        for metric in metrics:
            wanted.extend((target.region, key) for key in metric.series())
            if metric.percentiles and metric.derived is None:
                wanted.extend((target.region, metric.percentile_series(p)) for p in settings.percentiles)
    start = previous.start if previous is not None else window.start
    points, stats = read_series(client_for, wanted, start, window.end) if wanted else ({}, FetchStats())

    for target, metrics in present:
        results[target.key] = _judge(target, metrics, points, window, previous, settings.percentiles)

    slo_outcomes, slo_stats = _slos(client_for, settings.slos, [r for r in results.values() if r.exists], now)
    stats.add(slo_stats)
    ordered = sorted(results.values(), key=lambda r: (-severity(r.verdict.verdict), r.target.name))
    return CheckResult(
        window=window, resources=ordered, verdict=overall_verdict(r.verdict.verdict for r in ordered),
        slos=slo_outcomes, fetch=stats, calls=counter, previous=previous,
        cpu_seconds=time.thread_time() - cpu_started, duration_seconds=time.perf_counter() - started,
    )


def _values(points: Sequence[Point], window: TimeWindow) -> list[Point]:
    return [(at, v) for at, v in points if window.start <= at < window.end]


def _metric_points(metric: ResolvedMetric, region: str | None,
                   points: Mapping[SeriesRef, list[Point]], window: TimeWindow) -> list[Point]:
    series = [_values(points.get((region, key), []), window) for key in metric.series()]
    if metric.derived is None:
        return series[0]
    return derive_rate(metric.derived, series[0], series[1])


def _window_value(metric: ResolvedMetric, region: str | None, points: Mapping[SeriesRef, list[Point]],
                  window: TimeWindow) -> float | None:
    if metric.derived is None:
        return performance.aggregate([v for _, v in _metric_points(metric, region, points, window)], metric.statistic)
    numerator, denominator = (_values(points.get((region, key), []), window) for key in metric.series())
    return window_total(metric.derived, numerator, denominator)


def _judge(target: Target, metrics: Sequence[ResolvedMetric], points: Mapping[SeriesRef, list[Point]],
           window: TimeWindow, previous: TimeWindow | None, percentiles: Sequence[str]) -> ResourceResult:
    verdicts: list[MetricVerdict | None] = []
    trends: list[performance.Trend] = []
    for metric in metrics:
        now_points = _metric_points(metric, target.region, points, window)
        verdicts.append(evaluate_metric(metric, [v for _, v in now_points]))
        percentile_trends = []
        if metric.percentiles and metric.derived is None:
            for name in percentiles:
                key = (target.region, metric.percentile_series(name))
                percentile_trends.append(performance.PercentileTrend(
                    name,
                    performance.aggregate([v for _, v in _values(points.get(key, []), window)], "Average"),
                    performance.aggregate([v for _, v in _values(points.get(key, []), previous)], "Average")
                    if previous is not None else None,
                ))
        trends.append(performance.compare(
            metric.name,
            _window_value(metric, target.region, points, window),
            _window_value(metric, target.region, points, previous) if previous is not None else None,
            comparison=metric.comparison, judged=metric.judged, unit=metric.unit, statistic=metric.statistic,
            percentiles=percentile_trends,
        ))
    return ResourceResult(target, resource_verdict(verdicts), list(metrics), trends)


def _slos(client_for: ClientFor, specs: Sequence[SloSpec], resources: Sequence[ResourceResult],
          now: datetime) -> tuple[list[SloOutcome], FetchStats]:
    """Each SLO from its own span of datapoints: one fetch per span length and region."""
    end = floor_minute(now)
    by_ref: dict[str, ResourceResult] = {}
    for checked in resources:
        by_ref.setdefault(checked.target.id, checked)
    for checked in resources:
        by_ref[checked.target.name] = checked
    plans: list[tuple[SloSpec, ResourceResult | None, ResolvedMetric | None, int | None]] = []
    wanted: dict[timedelta, list[SeriesRef]] = defaultdict(list)
    for spec in specs:
        resource = by_ref.get(spec.target)
        metric = resource.metric(spec.metric) if resource is not None else None
        period = slo.slo_period(parse_duration(spec.window), metric.period) if metric is not None else None
        plans.append((spec, resource, metric, period))
        if resource is not None and metric is not None and period is not None:
            span = slo.slo_span(parse_duration(spec.window))
            wanted[span].extend((resource.target.region, key) for key in _at_period(metric, period).series())
    stats = FetchStats()
    points: dict[timedelta, dict[SeriesRef, list[Point]]] = {}
    for span, refs in wanted.items():
        points[span], fetched = read_series(client_for, refs, end - span, end)
        stats.add(fetched)
    outcomes = []
    for spec, resource, metric, period in plans:
        if resource is None or metric is None or period is None:
            why = (f"{spec.target!r} is not among the resources checked" if resource is None
                   else f"{spec.metric!r} is not evaluated for {spec.target}")
            outcomes.append(SloOutcome(spec, spec.target, period, slo.SloResult(None, None, message=why)))
            continue
        length = parse_duration(spec.window)
        span_points = points[slo.slo_span(length)]
        series = _metric_points(_at_period(metric, period), resource.target.region, span_points,
                                TimeWindow(end - slo.slo_span(length), end))
        result = slo.evaluate_slo(series, objective=spec.objective, window=length, end=end,
                                  good=_good(spec.good_condition))
        outcomes.append(SloOutcome(spec, resource.target.name, period, result))
    return outcomes, stats


def _good(condition: SloGoodCondition) -> Callable[[float], bool]:
    def good(value: float) -> bool:
        return breaches(value, condition.threshold, condition.comparison)
    return good


def _at_period(metric: ResolvedMetric, period: int) -> ResolvedMetric:
    return metric if metric.period == period else replace(metric, period=period)
