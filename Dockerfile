# ns_exporter container image.
#
#   docker build -t ns-exporter .
#   docker run -d --name ns_exporter --pid=host --user=0:0 --read-only \
#     --cap-drop=ALL --cap-add=SYS_PTRACE --cap-add=DAC_READ_SEARCH \
#     --security-opt=no-new-privileges --security-opt=apparmor=unconfined \
#     -v /proc:/host/proc:ro \
#     -v /etc/passwd:/host/root/etc/passwd:ro -e NS_EXPORTER_PATH_ROOTFS=/host/root \
#     -p 10199:10199 ns-exporter
#
# The host's /proc is read from /host/proc: --path.procfs=/host/proc, set for every subcommand
# through NS_EXPORTER_PATH_PROCFS below. README.md, "Deployment", explains each option.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# Build stage: the source tree becomes wheels, installed into a virtualenv that has no pip.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY ns_exporter ./ns_exporter
RUN pip wheel --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/ns_exporter \
    && pip --python /opt/ns_exporter/bin/python install --no-index --find-links /wheels \
       /wheels/ns_exporter-*.whl

# Final stage: the interpreter and the virtualenv; no compiler, no pip, no setuptools.
FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ns_exporter" \
      org.opencontainers.image.description="Prometheus exporter and monitoring agent for Linux namespaces" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

RUN python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10199 ns_exporter \
    && useradd --system --uid 10199 --gid 10199 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin ns_exporter
COPY --from=build /opt/ns_exporter /opt/ns_exporter

# /probe and the process-event listener need SYS_ADMIN and NET_ADMIN: off unless asked for.
ENV PATH=/opt/ns_exporter/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NS_EXPORTER_PATH_PROCFS=/host/proc \
    NS_EXPORTER_PROBE_ENABLED=false \
    NS_EXPORTER_EVENTS_ENABLED=false

# Unprivileged by default, and then it sees only its own processes' namespaces: Docker and
# Kubernetes give added capabilities to uid 0 only, so the run line above uses --user=0:0 with
# every capability but SYS_PTRACE and DAC_READ_SEARCH dropped.
USER 10199:10199
EXPOSE 10199

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('NS_EXPORTER_WEB_LISTEN_ADDRESS', ':10199').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/-/healthy', timeout=4)"]

ENTRYPOINT ["ns-exporter"]
CMD ["serve"]
