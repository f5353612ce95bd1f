# Driftwatch: the dashboard (default) or a poller, from one image.
#   docker build -t driftwatch .
#   docker run -p 8501:8501 \
#     -v "$PWD/driftwatch.toml:/config/driftwatch.toml:ro" \
#     -v "$PWD/.streamlit/secrets.toml:/app/.streamlit/secrets.toml:ro" \
#     -e DRIFTWATCH_CONFIG=/config/driftwatch.toml driftwatch
#   docker run … driftwatch python -m checks poll --config /config/driftwatch.toml   # a poller
# No configuration and no secret is baked into the image: mount them. Without DRIFTWATCH_CONFIG
# and DATABASE_URL the dashboard shows the embedded demo database (the pgserver wheel).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DRIFTWATCH_STATE_DIR=/data \
    XDG_DATA_HOME=/data

WORKDIR /app

# `[environments.NAME.git]` reads the schema at the deployed commit with git, which slim images
# lack; the clone is a host folder mounted into the container and owned by another uid, which
# git refuses ("detected dubious ownership") unless it is a safe.directory.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*'

# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

# PostgreSQL (the demo's pgserver) refuses to run as root, and so should a dashboard.
# /data is the volume: the demo's PostgreSQL (DRIFTWATCH_STATE_DIR) and, without a [store],
# the default history store and audit log ($XDG_DATA_HOME/driftwatch/history.sqlite3), which
# would otherwise sit in the container's home and be lost with the container.
RUN useradd --create-home --uid 10001 driftwatch \
 && mkdir -p /data /config \
 && chown driftwatch:driftwatch /data

COPY checks/ checks/
COPY dashboard/ dashboard/
COPY examples/ examples/
COPY .streamlit/config.toml .streamlit/config.toml

USER driftwatch
VOLUME ["/data"]
EXPOSE 8501

# Slim images have no curl: Python's urllib probes Streamlit's own health endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]

CMD ["python", "-m", "checks", "dashboard", "--address", "0.0.0.0", "--port", "8501"]
