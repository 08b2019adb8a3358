# syncup: one image for every platform. Configure with SYNCUP_* environment variables
# (see config.example.toml) or mount a config file and set SYNCUP_CONFIG.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# tini runs as PID 1: it forwards SIGTERM (docker stop, Kubernetes) to syncup, which stops
# gracefully in-process, and reaps zombies. The kernel ignores a signal sent to PID 1 that has
# no handler yet, so without it a stop during start-up would wait for SIGKILL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 syncup \
    && mkdir /data \
    && chown syncup:syncup /data

WORKDIR /src
COPY pyproject.toml README.md config.example.toml ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
COPY migrations ./migrations
RUN pip install . && rm -rf /src

USER syncup
WORKDIR /data
# The embedded default keeps its SQLite file in the /data volume; set SYNCUP_DATABASE_URL
# to a postgresql+asyncpg:// URL to use PostgreSQL instead.
ENV SYNCUP_DATABASE_URL=sqlite+aiosqlite:////data/syncup.db
VOLUME ["/data"]

# Exec form throughout, so that the signals reach syncup and not a shell. SIGTERM is what
# docker stop sends; syncup finishes the sends in flight, releases its leases and exits 0
# within 10 s (docker's default grace before SIGKILL).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "syncup"]
CMD ["run"]
