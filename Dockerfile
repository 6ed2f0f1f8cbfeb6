# One image for the operator and the Terraform runner Jobs (python -m devops_operator.runner ...).
# Multi-stage: wheels are built in the first stage; the final stage has no compiler or pip cache.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Pinned Terraform and OpenTofu, each verified against its release's SHA256SUMS.
FROM ${PYTHON_IMAGE} AS engines
ARG TERRAFORM_VERSION=1.9.8
ARG TOFU_VERSION=1.8.5
ARG TARGETARCH=amd64
WORKDIR /engines
COPY scripts/fetch_engine.py /tmp/fetch_engine.py
RUN python /tmp/fetch_engine.py terraform "${TERRAFORM_VERSION}" "${TARGETARCH}" /engines \
    && python /tmp/fetch_engine.py tofu "${TOFU_VERSION}" "${TARGETARCH}" /engines

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
# git for git sources (the runner clones them).
ARG GIT_VERSION=1:2.39.5-0+deb12u2
LABEL org.opencontainers.image.title="devops-operator" \
      org.opencontainers.image.description="Terraform deployments and AWS operations as Kubernetes resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
COPY --from=engines /engines/terraform /engines/tofu /usr/local/bin/
RUN apt-get update && apt-get install -y --no-install-recommends "git=${GIT_VERSION}" \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && groupadd --gid 10001 devops && useradd --uid 10001 --gid devops --no-create-home --shell /usr/sbin/nologin devops
USER 10001:10001
# 8080: Prometheus /metrics; 8081: liveness (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "devops_operator"]
