"""Benchmarks of devops-operator (`make bench`); figures go to benchmarks/results/ and docs/performance.md."""
