# syncup: one image for every platform. Configure with SYNCUP_* environment variables
# (see config.example.toml) or mount a config file and set SYNCUP_CONFIG.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

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

ENTRYPOINT ["syncup"]
CMD ["run"]
