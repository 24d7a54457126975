# Multi-stage build: compile the PoW extension in a builder, ship a slim runtime that serves as uid 10001.
FROM python:3.13-slim AS builder
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.13-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DS2API_CONFIG=/app/config.json DS2API_STATE_PATH=/data/state.db
RUN useradd --create-home --uid 10001 deepseek2api && mkdir -p /data /app && chown deepseek2api /data
COPY --from=builder /wheels /wheels
# The native PoW must be in the image: without it every completion's proof-of-work is ~20x slower.
RUN pip install /wheels/*.whl && rm -rf /wheels \
 && python -c "from deepseek2api.deepseek.pow import native_available; assert native_available()"
WORKDIR /app
COPY app.py ./
COPY docker/entrypoint.sh /usr/local/bin/deepseek2api-entrypoint
EXPOSE 5001
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5001/health', timeout=4).status == 200 else 1)"
# Starts as root only to make a mode-600 host config.json readable, then runs the gateway as uid 10001
# (docker/entrypoint.sh); `docker run --user 10001` skips that step.
ENTRYPOINT ["/bin/sh", "/usr/local/bin/deepseek2api-entrypoint"]
CMD ["deepseek2api", "serve", "--host", "0.0.0.0", "--port", "5001"]
