"""Masking and clustering over real-world log line shapes (Lambda, ECS, RDS), and the known causes.

The fixtures in tests/fixtures/logs/ are the shapes these services write (Lambda's runtime lines and
START/END/REPORT, nginx and JSON and Java/Spring lines from ECS tasks, PostgreSQL and MySQL from RDS);
expected.json is what they cluster into, each pattern with the known cause it is attributed to (reviewed
by hand: lines that differ only in ids, numbers, timestamps and addresses share a signature, lines that
say something different do not).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devops_operator.ops.investigation.causes import KNOWN_CAUSES, cause_of
from devops_operator.ops.investigation.masking import MAX_SIGNATURE_CHARS, mask
from devops_operator.ops.investigation.patterns import LogEvent, Pattern, cluster

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "logs"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def events(name: str) -> list[LogEvent]:
    lines = (FIXTURES / f"{name}.log").read_text().splitlines()
    return [LogEvent(index * 1000, line, f"/fixtures/{name}") for index, line in enumerate(lines)]


@pytest.mark.parametrize("name", ["lambda", "ecs", "rds"])
def test_fixture_logs_cluster_into_the_reviewed_patterns(name: str) -> None:
    found = cluster(events(name))
    got = [{"count": p.count, "cause": (c.id if (c := cause_of(p)) else None), "signature": p.signature}
           for p in found.patterns]
    assert got == EXPECTED[name]
    assert found.events == sum(p["count"] for p in EXPECTED[name]) and found.unclustered == 0


@pytest.mark.parametrize(("line", "signature"), [
    ("2024-05-14T09:12:03.118Z\t3f1c2a7e-8b4d-4f6a-9c2e-1d5b7a9e0f12\tERROR\tboom",
     "<TS> <UUID> ERROR boom"),
    ("client 10.0.12.34:5432 and fe80::1ff:fe23:4567:890a", "client <IP> and <IP>"),
    ("trace 0x7ffd1234 commit 3f2a9c1d8e7b", "trace <HEX> commit <HEX>"),
    ("instance i-0abc123def stopped after 30000ms", "instance <ID> stopped after <NUM>ms"),
    ("s3:GetObject over http2 with utf8", "s3:GetObject over http2 with utf8"),
    ("arn:aws:iam::123456789012:role/app denied", "<ARN> denied"),
    ("Dec  2 06:43:10 host kernel: oom", "<TS> host kernel: oom"),
    ("02/Jan/2024:03:04:05 +0000 GET /x 200 512", "<TS> GET /x <NUM> <NUM>"),
    ("  padded\t\tline  ", "padded line"),
], ids=["lambda-prefix", "ips", "hex", "ids-and-numbers", "words-with-digits", "arn", "syslog", "clf", "spaces"])
def test_masking(line: str, signature: str) -> None:
    assert mask(line) == signature


def test_a_signature_is_bounded() -> None:
    assert len(mask("x" * 5000)) == MAX_SIGNATURE_CHARS


def test_patterns_keep_counts_first_and_last_seen_and_an_example() -> None:
    found = cluster([LogEvent(3000, "ERROR job 7 failed", "g"), LogEvent(1000, "ERROR job 8 failed", "g"),
                     LogEvent(2000, "INFO fine", "g"), LogEvent(5000, "ERROR job 9 failed", "h")])
    top = found.patterns[0]
    assert (top.signature, top.count, top.first_seen, top.last_seen) == ("ERROR job <NUM> failed", 3, 1000, 5000)
    assert top.example == "ERROR job 7 failed" and top.log_group == "g"
    assert [p.signature for p in found.patterns] == ["ERROR job <NUM> failed", "INFO fine"]


def test_signatures_past_the_bound_are_counted_not_dropped() -> None:
    found = cluster([LogEvent(n, f"distinct {'x' * (n % 7)} {chr(65 + n % 26)}", "g") for n in range(100)],
                    max_signatures=10)
    assert found.distinct == 10 and found.events == 100
    assert sum(p.count for p in found.patterns) + found.unclustered == 100


# Every known cause has a line it recognises (the table cannot hold an entry nothing matches).
EXAMPLES = {
    "connection-exhaustion": "FATAL: sorry, too many clients already",
    "database-timeout": "ERROR Database connection timeout after 3000 ms",
    "deadlock": "ERROR: deadlock detected",
    "broken-package": "[ERROR] Runtime.ImportModuleError: Unable to import module 'app'",
    "throttling": "ThrottlingException: Rate exceeded",
    "out-of-memory": "java.lang.OutOfMemoryError: Java heap space",
    "function-timeout": "Task timed out after 6.01 seconds",
    "permission-denied": "AccessDeniedException: User is not authorized to perform: dynamodb:PutItem",
    "connection-refused": "Error: connect ECONNREFUSED 10.0.0.5:8080",
    "dependency-timeout": "upstream timed out while reading response header",
    "dns-failure": "getaddrinfo ENOTFOUND api.partner.example",
    "disk-full": "OSError: [Errno 28] No space left on device",
    "cold-starts": "REPORT RequestId: x Duration: 12 ms Init Duration: 400.2 ms",
    "unhandled-exception": "Traceback (most recent call last):",
}


def test_every_known_cause_recognises_its_example() -> None:
    assert set(EXAMPLES) == {cause.id for cause in KNOWN_CAUSES}
    for cause_id, line in EXAMPLES.items():
        found = cause_of(Pattern(mask(line), 1, 0, 0, line, "g"))
        assert found is not None and found.id == cause_id, (cause_id, found)
