"""What the handlers share: configuration and the clients, built once in the start-up hook.

kopf passes it to every handler through `memo.runtime`; nothing else holds global clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.devopsproject import KIND as PROJECT_KIND
from devops_operator.api.devopsproject import DevOpsProjectSpec
from devops_operator.aws.errors import CredentialsError
from devops_operator.aws.session import AwsSessionFactory, ProjectAwsConfig
from devops_operator.config import OperatorConfig
from devops_operator.kube import secrets
from devops_operator.kube.client import REQUEST_TIMEOUT


@dataclass
class Runtime:
    config: OperatorConfig
    kube: ApiClient
    aws: AwsSessionFactory
    # Specs the DevOpsProject handler just parsed, so the AWS factory need not read them again.
    _projects: dict[str, DevOpsProjectSpec] = field(default_factory=dict)

    @classmethod
    def build(cls, config: OperatorConfig, kube: ApiClient) -> Runtime:
        runtime = cls(config=config, kube=kube, aws=None)  # type: ignore[arg-type]
        runtime.aws = AwsSessionFactory(projects=runtime.project_aws_config, secrets=runtime.read_secret)
        return runtime

    def read_secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """A credentials Secret's data; a refusal to read it is a credentials problem with its fix."""
        try:
            return secrets.read_secret(self.kube, namespace, name)
        except ApiException as exc:
            if exc.status in (401, 403):
                raise CredentialsError(
                    f"the operator may not read Secret {namespace}/{name} ({exc.status} {exc.reason}): grant its "
                    f"ServiceAccount get on secrets in namespace {namespace}"
                ) from None
            raise

    def read_project(self, namespace: str, name: str) -> DevOpsProjectSpec | None:
        """A DevOpsProject's parsed spec, or None when it does not exist or does not parse."""
        try:
            obj = CustomObjectsApi(self.kube).get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PROJECT_KIND.plural, name, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        assert isinstance(obj, dict)
        return DevOpsProjectSpec.model_validate(obj.get("spec") or {})

    def remember_project(self, project_key: str, spec: DevOpsProjectSpec) -> None:
        """Record the spec a handler has in hand and drop the AWS sessions built from an older one."""
        self._projects[project_key] = spec
        self.aws.invalidate(project_key)

    def forget_project(self, project_key: str) -> None:
        self._projects.pop(project_key, None)
        self.aws.invalidate(project_key)

    def project_aws_config(self, project_key: str) -> ProjectAwsConfig | None:
        """The AWS session factory's view of a project ("namespace/name").

        The spec last seen by the DevOpsProject handler, else read from the API (right after an
        operator restart, before that handler ran); the operator-wide default endpoint (moto,
        LocalStack) fills in where a project sets none.
        """
        namespace, _, name = project_key.partition("/")
        spec = self._projects.get(project_key) or self.read_project(namespace, name)
        if spec is None:
            return None
        if not spec.aws.endpoint_url and self.config.aws_endpoint_url:
            aws = spec.aws.model_copy(update={"endpoint_url": self.config.aws_endpoint_url})
            spec = spec.model_copy(update={"aws": aws})
        return ProjectAwsConfig.from_spec(namespace, spec)
