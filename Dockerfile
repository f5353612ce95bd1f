# Driftwatch dashboard. Build: docker build -t driftwatch .
# Run:  docker run -p 8501:8501 -e DATABASE_URL=postgresql://… -e DRIFTWATCH_SCHEMA=/schema/schema.prisma \
#         -v "$PWD/prisma:/schema:ro" driftwatch
# Without DATABASE_URL it starts the embedded demo database (the pgserver wheel) inside the container.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

# PostgreSQL (the demo's pgserver) refuses to run as root, and so should a dashboard.
RUN useradd --create-home --uid 10001 driftwatch \
 && mkdir -p /app/.driftwatch \
 && chown driftwatch:driftwatch /app/.driftwatch

COPY checks/ checks/
COPY dashboard/ dashboard/
COPY examples/ examples/
COPY .streamlit/config.toml .streamlit/config.toml

USER driftwatch
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]

CMD ["python", "-m", "streamlit", "run", "dashboard/app.py", "--server.address=0.0.0.0", "--server.port=8501"]
