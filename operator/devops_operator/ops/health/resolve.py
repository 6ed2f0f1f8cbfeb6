"""Which metrics a target is judged by: the type's defaults, then the spec's type-level overrides, then the
target's own, merged by metric name and field by field (pure).

A resolved metric knows the raw series it reads (`SeriesKey`: one CloudWatch query each) and how to turn
them into the value judged. Problems that no call could fix (a metric name CloudWatch never had in an AWS
namespace, a rate given a statistic of its own) are reported with the field that caused them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from devops_operator.api.common import ResourceType
from devops_operator.api.healthcheck import (
    ComparisonOperator,
    MetricSpec,
    MissingDataPolicy,
    TypeMetrics,
)
from devops_operator.ops.health.registry import KNOWN_METRICS, TYPES, DerivedRate, MetricDefault
from devops_operator.ops.health.targets import Target

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SeriesKey:
    """One raw CloudWatch series (one GetMetricData query)."""

    namespace: str
    metric_name: str
    dimensions: Dimensions
    statistic: str
    period: int
    unit: str | None = None


@dataclass(frozen=True)
class ResolvedMetric:
    name: str
    namespace: str
    dimensions: Dimensions
    statistic: str
    period: int
    unit: str | None  # how values are shown
    warning: float | None
    critical: float | None
    comparison: ComparisonOperator
    datapoints_to_breach: int
    missing_data: MissingDataPolicy
    derived: DerivedRate | None = None
    percentiles: bool = False
    field: str = ""  # the spec field that last set it; empty for an untouched default
    # The unit sent with the query, only where the spec sets one: CloudWatch returns nothing for a unit
    # other than the one the metric was published with, and publishers differ (None, Count).
    unit_filter: str | None = None

    @property
    def judged(self) -> bool:
        return self.warning is not None or self.critical is not None

    def series(self) -> tuple[SeriesKey, ...]:
        """The raw series it reads: one, or a rate's numerator and denominator."""
        if self.derived is None:
            return (SeriesKey(self.namespace, self.name, self.dimensions, self.statistic, self.period,
                              self.unit_filter),)
        return tuple(
            SeriesKey(part.namespace or self.namespace, part.metric_name, self.dimensions, part.statistic,
                      self.period)
            for part in (self.derived.numerator, self.derived.denominator)
        )

    def percentile_series(self, percentile: str) -> SeriesKey:
        return SeriesKey(self.namespace, self.name, self.dimensions, percentile, self.period, self.unit_filter)


@dataclass(frozen=True)
class MetricProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _merge_dimensions(own: Dimensions, extra: dict[str, str]) -> Dimensions:
    merged = dict(own)
    merged.update(extra)
    return tuple(sorted(merged.items()))


def _from_default(default: MetricDefault, target: Target, missing: MissingDataPolicy) -> ResolvedMetric:
    info = TYPES[target.type]
    return ResolvedMetric(
        name=default.name,
        namespace=default.namespace or info.namespace,
        dimensions=_merge_dimensions(info.dimensions(target), dict(default.dimensions)),
        statistic=default.statistic,
        period=default.period,
        unit=default.unit,
        warning=default.warning,
        critical=default.critical,
        comparison=default.comparison,
        datapoints_to_breach=1,
        missing_data=default.missing_data or missing,
        derived=default.derived,
        percentiles=default.percentiles,
    )


def _new_metric(spec: MetricSpec, target: Target, missing: MissingDataPolicy, where: str) -> ResolvedMetric:
    info = TYPES[target.type]
    return ResolvedMetric(
        name=spec.name,
        namespace=spec.namespace or info.namespace,
        dimensions=_merge_dimensions(info.dimensions(target), {}),
        statistic="Average",
        period=60,
        unit=None,
        warning=None,
        critical=None,
        comparison=ComparisonOperator.GREATER_THAN,
        datapoints_to_breach=1,
        missing_data=missing,
        field=where,
    )


def _apply(metric: ResolvedMetric, spec: MetricSpec, where: str) -> ResolvedMetric:
    threshold = spec.threshold
    return ResolvedMetric(
        name=metric.name,
        namespace=spec.namespace or metric.namespace,
        dimensions=_merge_dimensions(metric.dimensions, spec.dimensions),
        statistic=spec.statistic or metric.statistic,
        period=spec.period or metric.period,
        unit=spec.unit or metric.unit,
        # A threshold object replaces both levels: {warning: 5} alone means "no critical level".
        warning=threshold.warning if threshold is not None else metric.warning,
        critical=threshold.critical if threshold is not None else metric.critical,
        comparison=ComparisonOperator(spec.comparison) if spec.comparison else metric.comparison,
        datapoints_to_breach=spec.datapoints_to_breach or metric.datapoints_to_breach,
        missing_data=MissingDataPolicy(spec.missing_data) if spec.missing_data else metric.missing_data,
        derived=metric.derived,
        percentiles=metric.percentiles,
        field=where,
        unit_filter=spec.unit or metric.unit_filter,
    )


def resolve_metrics(target: Target, type_metrics: TypeMetrics | None, missing: MissingDataPolicy,
                    type_field: str = "") -> list[ResolvedMetric]:
    """The metrics one target is judged by, in a stable order (defaults first, then added ones)."""
    info = TYPES[target.type]
    include_defaults = type_metrics.include_defaults if type_metrics is not None else True
    metrics: dict[str, ResolvedMetric] = {}
    if include_defaults:
        metrics = {d.name: _from_default(d, target, missing) for d in info.defaults}
    disabled: set[str] = set()
    layers: list[tuple[str, Sequence[MetricSpec]]] = []
    if type_metrics is not None:
        layers.append((f"{type_field}.metrics", type_metrics.metrics))
    layers.append((f"{target.field}.metrics" if target.field else "metrics", target.metrics))
    for prefix, specs in layers:
        for index, spec in enumerate(specs):
            where = f"{prefix}[{index}]"
            if not spec.enabled:
                metrics.pop(spec.name, None)
                disabled.add(spec.name)
                continue
            disabled.discard(spec.name)
            base = metrics.get(spec.name)
            if base is None:
                default = info.default(spec.name)
                base = (_from_default(default, target, missing) if default is not None
                        else _new_metric(spec, target, missing, where))
            metrics[spec.name] = _apply(base, spec, where)
    return [metric for name, metric in metrics.items() if name not in disabled]


def _overrides(type_metrics: Sequence[TypeMetrics], targets: Iterable[Target]) -> Iterable[tuple[str, ResourceType,
                                                                                                  MetricSpec]]:
    for t_index, entry in enumerate(type_metrics):
        for m_index, spec in enumerate(entry.metrics):
            yield f"spec.metrics[{t_index}].metrics[{m_index}]", ResourceType(entry.type), spec
    seen: set[str] = set()
    for target in targets:
        if not target.field or target.field in seen:
            continue
        seen.add(target.field)
        for m_index, spec in enumerate(target.metrics):
            yield f"{target.field}.metrics[{m_index}]", target.type, spec


def metric_problems(type_metrics: Sequence[TypeMetrics], targets: Iterable[Target]) -> list[MetricProblem]:
    """Overrides that cannot work, whatever AWS answers: found before any call."""
    problems: list[MetricProblem] = []
    for where, rtype, spec in _overrides(type_metrics, targets):
        info = TYPES[rtype]
        default = info.default(spec.name)
        if default is not None and default.derived is not None:
            for attribute, wire in (("namespace", "namespace"), ("statistic", "statistic"), ("unit", "unit")):
                if getattr(spec, attribute) is not None:
                    parts = default.derived
                    problems.append(MetricProblem(
                        f"{where}.{wire}",
                        f"{spec.name} is computed from {parts.numerator.metric_name} / "
                        f"{parts.denominator.metric_name}; its {wire} cannot be set (set threshold, period, "
                        "datapointsToBreach or missingData, or add the raw metrics by name)",
                    ))
            continue
        if default is not None or not spec.enabled:
            continue
        namespace = spec.namespace or info.namespace
        known = KNOWN_METRICS.get(namespace)
        if known is not None and spec.name not in known:
            close = difflib.get_close_matches(spec.name, sorted(known), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            problems.append(MetricProblem(
                f"{where}.name",
                f"CloudWatch has no metric {spec.name!r} in {namespace}{hint}: fix the name, or set namespace "
                "for a custom metric",
            ))
    return problems
