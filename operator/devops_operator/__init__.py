"""devops-operator: the DevOps lifecycle (Terraform deployments, AWS operations) as Kubernetes resources."""

__version__ = "0.1.0"
