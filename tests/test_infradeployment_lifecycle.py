"""The whole InfraDeployment lifecycle through the operator, the runner Jobs (run by the kubelet double),
the stand-in Terraform and moto."""

from __future__ import annotations

import json

import boto3
from kubernetes.client import ApiClient

from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread

from deployments import deployment, get, project, wait_phase
from support import condition


def test_auto_approved_plan_is_applied_and_registered(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str
) -> None:
    project(kube_api, namespace)
    deployment(kube_api, namespace, "queue", approval={"mode": "auto"})
    ready = wait_phase(kube_api, namespace, "queue", "Ready", "Failed", "Stalled")
    status = ready["status"]
    assert status["phase"] == "Ready", status
    assert status["lastAppliedPlanId"] == status["plan"]["id"]
    assert status["approval"]["state"] == "AutoApproved"
    sqs = boto3.client("sqs", endpoint_url=aws_url, region_name="us-east-1")
    assert sqs.get_queue_url(QueueName=f"{namespace}-queue-jobs")["QueueUrl"]
    assert condition(ready, "Applied")["status"] == "True"
    print(json.dumps(status, indent=1))
