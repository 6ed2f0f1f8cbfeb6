"""The stand-in Terraform: a test double of the project's own for machines with no terraform or tofu."""
