# syntax=docker/dockerfile:1
# Build stage: dependencies from the hashed lock into a virtualenv (a cached layer: it only
# reruns when requirements.lock changes).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.lock

# Runtime stage: the virtualenv and our code only, as an unprivileged user.
FROM python:3.11-slim
LABEL org.opencontainers.image.title="smsc-tasks-bot" \
      org.opencontainers.image.description="Telegram bot for SMSC deferred tasks: /tasks, /get and alerts" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 bot \
 && useradd --system --uid 10001 --gid bot --home-dir /app --no-create-home --shell /usr/sbin/nologin bot \
 && mkdir -p /data && chown bot:bot /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY bot/ bot/
COPY handlers/ handlers/
COPY storage/ storage/
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite:////data/bot.sqlite3 \
    PORT=8080
USER bot
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]
CMD ["python", "-m", "bot"]
