# One image for every Fieldline service: `fieldline serve <service>` (deploy/compose.yaml
# sets the command per container) and the one-shot `fieldline migrate`.
#   docker build -t fieldline:latest .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FIELDLINE_DATA_DIR=/var/lib/fieldline \
    FIELDLINE_HTTP_HOST=0.0.0.0 \
    FIELDLINE_HTTP_PORT=8000 \
    FIELDLINE_LOG_FORMAT=json

# The service user, in Mosquitto's group (gid 1883, as in the eclipse-mosquitto image):
# mqtt_auth runs as 1883:1883 to write the broker's password and ACL files.
RUN groupadd --system --gid 1883 mosquitto \
    && useradd --system --uid 10001 --gid mosquitto --home-dir /var/lib/fieldline fieldline \
    && mkdir -p /var/lib/fieldline \
    && chown fieldline:mosquitto /var/lib/fieldline \
    && chmod 0770 /var/lib/fieldline

WORKDIR /src
# Dependencies first (a layer that changes only with pyproject.toml), then the code.
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY provisioning ./provisioning
COPY sdk ./sdk
COPY device ./device
RUN pip install . && rm -rf /src/build

WORKDIR /var/lib/fieldline
USER fieldline
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
ENTRYPOINT ["fieldline"]
CMD ["serve", "gateway"]
