# Multi-stage build: compile the PoW extension in a builder, ship a slim runtime as a non-root user.
FROM python:3.12-slim AS builder
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DS2API_CONFIG=/app/config.json DS2API_STATE_PATH=/data/state.db
RUN useradd --create-home --uid 10001 deepseek2api && mkdir -p /data /app && chown deepseek2api /data
COPY --from=builder /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY app.py ./
USER deepseek2api
EXPOSE 5001
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5001/health', timeout=4).status == 200 else 1)"
CMD ["deepseek2api", "serve", "--host", "0.0.0.0", "--port", "5001"]
