"""Remediation: impact assessment, approval, the action exactly once, verification, rollback and the log."""
