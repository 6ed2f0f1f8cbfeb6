"""The stand-in Terraform (a test double): its CLI, its refusals, drift and stale plans, against moto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from devops_operator.terraform.jobs import job_name
from devops_operator.terraform.planjson import state_outputs, state_resources, summarize_plan
from devops_operator.terraform.standin.expressions import UNKNOWN, Unsupported, evaluate
from devops_operator.terraform.standin.module import load_module

MODULE = """
variable "name" {
  type = string
}
variable "token" {
  type = string
  default = "s3cr3t-value"
  sensitive = true
}
provider "aws" {
  region = "us-east-1"
  default_tags {
    tags = { managed-by = "devops-operator" }
  }
}
locals {
  prefix = "acme-${var.name}"
}
resource "aws_sqs_queue" "jobs" {
  name = "${local.prefix}-jobs"
  tags = { team = "payments" }
}
resource "aws_iam_role" "worker" {
  name               = "${local.prefix}-worker"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [] })
}
resource "aws_iam_role_policy" "read" {
  name   = "read"
  role   = aws_iam_role.worker.name
  policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "sqs:*",
                        Resource = aws_sqs_queue.jobs.arn }] })
}
output "queue_url" {
  value = aws_sqs_queue.jobs.url
}
output "token" {
  value     = "t-${var.token}"
  sensitive = true
}
"""


def standin(directory: Path, aws_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": aws_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-m", "devops_operator.terraform.standin", *args], cwd=directory,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def module_dir(tmp_path: Path, namespace: str) -> Path:
    (tmp_path / "main.tf").write_text(MODULE)
    (tmp_path / "terraform.tfvars.json").write_text(json.dumps({"name": namespace[:30]}))
    return tmp_path


def test_expressions() -> None:
    values = {"var": {"n": 3, "name": "x"}, "local": {"tags": {"a": "b"}}}

    def resolve(parts: list[str]) -> object:
        if parts[0] in values:
            return values[parts[0]][parts[1]]
        return {"arn": UNKNOWN}

    assert evaluate('"${var.name}-${var.n * 2}"', resolve) == "x-6"
    assert evaluate("${merge(local.tags, {c = var.name})}", resolve) == {"a": "b", "c": "x"}
    assert evaluate('${var.n > 2 ? "big" : "small"}', resolve) == "big"
    assert evaluate('"${aws_s3_bucket.b.arn}/*"', resolve) is UNKNOWN
    with pytest.raises(Unsupported, match="for expressions"):
        evaluate("${[for x in var.list : x]}", resolve)


@pytest.mark.parametrize(("snippet", "construct"), [
    ('resource "aws_sqs_queue" "q" {\n  count = 2\n  name = "x"\n}', "count"),
    ('resource "aws_sqs_queue" "q" {\n  for_each = {}\n  name = "x"\n}', "for_each"),
    ('module "vpc" {\n  source = "./vpc"\n}', "modules"),
    ('data "aws_caller_identity" "me" {}', "data sources"),
    ('resource "aws_instance" "vm" {\n  ami = "x"\n}', "the resource type aws_instance"),
])
def test_unsupported_constructs_are_refused_in_one_line(tmp_path: Path, snippet: str, construct: str) -> None:
    (tmp_path / "main.tf").write_text(snippet + "\n")
    with pytest.raises(Unsupported) as refused:
        load_module(tmp_path)
    message = str(refused.value)
    assert construct in message and "install terraform or tofu" in message and "\n" not in message


def test_plan_apply_drift_and_a_stale_plan(module_dir: Path, aws_url: str) -> None:
    assert standin(module_dir, aws_url, "init", "-input=false").returncode == 0
    assert "test double" in standin(module_dir, aws_url, "version").stdout
    planned = standin(module_dir, aws_url, "plan", "-input=false", "-out=first.tfplan", "-detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    assert "test double" in planned.stderr
    plan = json.loads(standin(module_dir, aws_url, "show", "-json", "first.tfplan").stdout)
    summary = summarize_plan(plan)
    assert summary.add == 3 and "token" in summary.output_changes
    # Sensitive values are marked as Terraform marks them, so the shared parser masks them.
    assert "s3cr3t-value" not in json.dumps([c.__dict__ for c in summary.changes])
    second = standin(module_dir, aws_url, "plan", "-input=false", "-out=second.tfplan")
    assert second.returncode == 0
    applied = standin(module_dir, aws_url, "apply", "-input=false", "first.tfplan")
    assert applied.returncode == 0, applied.stderr
    stale = standin(module_dir, aws_url, "apply", "-input=false", "second.tfplan")
    assert stale.returncode == 1 and "Saved plan is stale" in stale.stderr
    state = json.loads(standin(module_dir, aws_url, "show", "-json").stdout)
    assert {r.address for r in state_resources(state)} == {"aws_sqs_queue.jobs", "aws_iam_role.worker",
                                                            "aws_iam_role_policy.read"}
    outputs = state_outputs(json.loads(standin(module_dir, aws_url, "output", "-json").stdout))
    assert outputs.sensitive_names == ["token"] and outputs.names == ["queue_url"]
    unchanged = standin(module_dir, aws_url, "plan", "-input=false", "-detailed-exitcode")
    assert unchanged.returncode == 0, unchanged.stdout
    # Drift behind Terraform's back: a tag changed in AWS shows as an update.
    sqs = boto3.client("sqs", endpoint_url=aws_url, region_name="us-east-1")
    url = outputs.values["queue_url"]
    sqs.tag_queue(QueueUrl=url, Tags={"team": "someone-else"})
    drifted = standin(module_dir, aws_url, "plan", "-input=false", "-detailed-exitcode")
    assert drifted.returncode == 2 and "aws_sqs_queue.jobs will be updated in-place" in drifted.stdout
    destroyed = standin(module_dir, aws_url, "destroy", "-auto-approve")
    assert destroyed.returncode == 0, destroyed.stderr
    assert "3 destroyed" in destroyed.stdout


def test_missing_required_variable_and_var_file(tmp_path: Path, aws_url: str) -> None:
    (tmp_path / "main.tf").write_text(MODULE)
    standin(tmp_path, aws_url, "init")
    missing = standin(tmp_path, aws_url, "plan", "-input=false")
    assert missing.returncode == 1 and 'No value for required variable "name"' in missing.stderr
    no_file = standin(tmp_path, aws_url, "plan", "-var-file=nope.tfvars")
    assert no_file.returncode == 1 and "nope.tfvars" in no_file.stderr


def test_job_names_are_deterministic_and_valid() -> None:
    first = job_name("a" * 80, "apply", "0123456789abcdef")
    assert first == job_name("a" * 80, "apply", "0123456789abcdef")
    assert len(first) <= 52 and first.endswith("-apply-0123456789ab")
    assert job_name("web", "plan", "aaaa") != job_name("web", "plan", "bbbb")


def test_version_constraints() -> None:
    from devops_operator.terraform.versions import satisfies

    assert satisfies("1.9.8", ">= 1.5, < 2.0") and satisfies("1.9.8", "~> 1.9") and satisfies("1.9.8", "1.9.8")
    assert not satisfies("1.9.8", "~> 1.10") and not satisfies("1.9.8", "< 1.6") and not satisfies("1.9.8", "!= 1.9.8")
    assert satisfies("1.9.8", "~> 1.9.2") and not satisfies("1.10.0", "~> 1.9.2")


THREE_QUEUES = "".join(f"""
resource "aws_sqs_queue" "q{i}" {{
  name = "${{var.name}}-q{i}"
}}
""" for i in range(3)) + """
variable "name" {
  type = string
}
provider "aws" {
  region = "us-east-1"
}
"""


def _applying(directory: Path, aws_url: str, **env: str) -> subprocess.Popen[str]:
    assert standin(directory, aws_url, "init", "-input=false").returncode == 0
    assert standin(directory, aws_url, "plan", "-input=false", "-out=p.tfplan").returncode == 0
    full = {**os.environ, "AWS_ENDPOINT_URL": aws_url, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", **env}
    return subprocess.Popen([sys.executable, "-m", "devops_operator.terraform.standin", "apply", "p.tfplan"],
                            cwd=directory, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_until(process: subprocess.Popen[str], marker: str) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if marker in line:
            return
    raise AssertionError(f"the apply ended before {marker!r}")


def _queues(aws_url: str, prefix: str) -> set[str]:
    sqs = boto3.client("sqs", endpoint_url=aws_url, region_name="us-east-1")
    return {url.rsplit("/", 1)[1] for url in sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])}


def _state_queues(directory: Path) -> set[str]:
    path = directory / "terraform.tfstate"
    if not path.exists():
        return set()
    return {r["instances"][0]["attributes"]["name"] for r in json.loads(path.read_text())["resources"]}


def test_sigterm_finishes_the_resource_in_flight_saves_state_and_releases_the_lock(
    tmp_path: Path, aws_url: str, namespace: str
) -> None:
    name = f"{namespace[:40]}-term"
    (tmp_path / "main.tf").write_text(THREE_QUEUES)
    (tmp_path / "terraform.tfvars.json").write_text(json.dumps({"name": name}))
    process = _applying(tmp_path, aws_url, DEVOPS_STANDIN_OPERATION_SECONDS="1.5")
    _read_until(process, "aws_sqs_queue.q0: Creating...")
    process.send_signal(signal.SIGTERM)  # while q0's create is in flight
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1 and "Gracefully shutting down" in err and "interrupted" in err
    assert _queues(aws_url, name) == {f"{name}-q0"} == _state_queues(tmp_path)  # finished, saved, no more
    assert not (tmp_path / ".terraform.tfstate.lock.info").exists()


@pytest.mark.parametrize(("interval", "recorded"), [("0", 1), ("", 0)])
def test_after_sigkill_the_state_is_what_was_persisted(
    tmp_path: Path, aws_url: str, namespace: str, interval: str, recorded: int
) -> None:
    """TF_STATE_PERSIST_INTERVAL as Terraform's: snapshots during the apply; by default (20 s) none in a short one,
    so a SIGKILL leaves created resources that no state records, and the lock held."""
    name = f"{namespace[:40]}-kill"
    (tmp_path / "main.tf").write_text(THREE_QUEUES)
    (tmp_path / "terraform.tfvars.json").write_text(json.dumps({"name": name}))
    process = _applying(tmp_path, aws_url, DEVOPS_STANDIN_OPERATION_SECONDS="1", TF_STATE_PERSIST_INTERVAL=interval)
    _read_until(process, "aws_sqs_queue.q1: Creating...")
    process.kill()
    process.wait(timeout=10)
    assert _queues(aws_url, name) == {f"{name}-q0"}
    assert len(_state_queues(tmp_path)) == recorded
    assert (tmp_path / ".terraform.tfstate.lock.info").exists()  # nothing released it
