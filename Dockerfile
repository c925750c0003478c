# One image for every RecOps service (Airflow components and Celery worker, MLflow server, API);
# docker-compose.yml builds it once (service `recops-image`) and every other service reuses it.
FROM python:3.11-slim

# libgomp1: the OpenMP runtime LightGBM and implicit load (python:3.11-slim does not ship it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir "uv==0.13.9"

WORKDIR /app
# Dependencies first (a layer that only changes with the lock), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev

# Non-root; the volume mount points exist and are owned by the user, so named volumes start
# with that owner. The code in /app stays read-only for it (all state goes to RECOPS_HOME).
RUN useradd --create-home --uid 50000 recops \
    && mkdir -p /data/recops /data/inbox \
    && chown -R recops:recops /data
USER recops
ENV RECOPS_HOME=/data/recops
