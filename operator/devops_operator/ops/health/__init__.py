"""HealthCheck's logic: which resources, which metrics, what they say.

- `registry`: the resource types as data (namespaces, dimensions, default metrics, existence checks);
- `targets`: targets from a spec, the tagging API or a deployment's registry;
- `resolve`: the metrics a target is judged by (defaults, then overrides);
- `windows`: time windows and CloudWatch's retention;
- `evaluate`, `slo`, `performance`: verdicts, SLO maths and trends, pure over plain datapoints;
- `service`: `check_resources`, the one function that reads AWS (existence, batched GetMetricData) and
  returns verdicts; the HealthCheck controller and Remediation's verification both call it;
- `report`: the report ConfigMap's JSON and Markdown.
"""
