# FaceWarden: the HTTPS API in a container, as a non-root user, TLS on, with no face data inside.
#
#   docker build -t facewarden .                                   # on a machine that reaches Docker Hub and PyPI
#   docker build --build-arg BASE_IMAGE=facewarden-base:bookworm .  # from a local base (scripts/docker-smoke.sh)
#
# The base must be Debian bookworm with python3 (3.11) and its venv module: the official python image or a
# `debootstrap --include=python3,python3-venv,ca-certificates,libgomp1` root imported with `docker import`.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/facewarden
# Dependencies first, from a stub package in its own folder (the slow layer: dlib, OpenCV, ONNX Runtime wheels),
# so editing the source does not reinstall them; then the real package, built from a clean tree.
COPY pyproject.toml /deps/
RUN mkdir -p /deps/src/facewarden && touch /deps/README.md /deps/src/facewarden/__init__.py \
    && /opt/facewarden/bin/pip install --upgrade pip \
    && /opt/facewarden/bin/pip install /deps && /opt/facewarden/bin/pip uninstall -y facewarden && rm -rf /deps
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/facewarden/bin/pip install --no-deps . && /opt/facewarden/bin/facewarden --help > /dev/null \
    && /opt/facewarden/bin/python -c "import facewarden.api, facewarden.client"

FROM ${BASE_IMAGE}
# libgomp1: OpenMP for ONNX Runtime and OpenCV (already in the python image; harmless when present).
RUN if command -v apt-get > /dev/null && ! ldconfig -p | grep -q libgomp.so.1; then \
        apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; fi \
    && groupadd --system --gid 10001 facewarden \
    && useradd --system --uid 10001 --gid facewarden --home-dir /var/lib/facewarden --shell /usr/sbin/nologin facewarden \
    && install -d -o facewarden -g facewarden -m 0700 /var/lib/facewarden /var/lib/facewarden-keys
COPY --from=build /opt/facewarden /opt/facewarden
COPY scripts/docker-healthcheck.py /usr/local/lib/facewarden/healthcheck.py

# The home holds the TLS certificate, the audit signing key and the file witness; the key-encryption key and
# the data-key vault live on their own volume, apart from the database (PostgreSQL in compose.yaml).
ENV PATH=/opt/facewarden/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FACEWARDEN_HOME=/var/lib/facewarden \
    FACEWARDEN_KEY_FILE=/var/lib/facewarden-keys/kek.json \
    FACEWARDEN_VAULT_URL=sqlite:////var/lib/facewarden-keys/vault.db \
    FACEWARDEN_HOST=0.0.0.0 \
    FACEWARDEN_PORT=8443 \
    FACEWARDEN_TLS=true
USER facewarden:facewarden
VOLUME ["/var/lib/facewarden", "/var/lib/facewarden-keys"]
EXPOSE 8443
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "/usr/local/lib/facewarden/healthcheck.py"]
ENTRYPOINT ["facewarden"]
CMD ["serve"]
