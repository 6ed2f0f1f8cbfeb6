"""Investigation: log events to error patterns, a timeline and a probable cause (pure logic, plus the
service that feeds it from CloudWatch and the Kubernetes API)."""
