# One image for the operator (and, from the InfraDeployment issue on, the Terraform runner).
# Multi-stage: wheels are built in the first stage; the final stage has no compiler or pip cache.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="devops-operator" \
      org.opencontainers.image.description="Terraform deployments and AWS operations as Kubernetes resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && groupadd --gid 10001 devops && useradd --uid 10001 --gid devops --no-create-home --shell /usr/sbin/nologin devops
USER 10001:10001
# 8080: Prometheus /metrics; 8081: liveness (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "devops_operator"]
