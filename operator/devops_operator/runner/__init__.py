"""The Terraform runner that runs inside the operator's Jobs (`python -m devops_operator.runner STEP`)."""
