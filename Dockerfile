# syntax=docker/dockerfile:1
# One pinned base for both stages: the virtualenv links to the build stage's interpreter, so the
# runtime stage must have the very same one at the same path.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: dependencies from the hashed lock into a virtualenv (a cached layer: it only
# reruns when requirements.lock changes), then pip and setuptools out of it: the runtime never
# installs anything, and every package less is one CVE scanner line less.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --no-deps --require-hashes -r /tmp/requirements.lock \
 && /opt/venv/bin/pip uninstall --yes pip setuptools
# The message catalogs are compiled here (the .mo files are build output, not in git).
COPY bot/locales/ /build/locales/
RUN /opt/venv/bin/pybabel -q compile -d /build/locales \
 && test -f /build/locales/ru/LC_MESSAGES/messages.mo

# Runtime stage: an init, the virtualenv and our code only, as an unprivileged user.
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="smsc-tasks-bot" \
      org.opencontainers.image.description="Telegram bot for SMSC deferred tasks: /tasks, /get and alerts" \
      org.opencontainers.image.licenses="MIT"
# tini is PID 1: it forwards SIGTERM to Python from the first instant (PID 1 ignores signals it
# has no handler for, so a stop right after start was lost until the grace period's SIGKILL) and
# reaps zombies. `-e 143`: a SIGTERM that ends Python before its handler is installed is a clean
# stop too, exit 0.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --system --gid 10001 bot \
 && useradd --system --uid 10001 --gid bot --home-dir /app --no-create-home --shell /usr/sbin/nologin bot \
 && mkdir -p /data && chown bot:bot /data
COPY --from=build /opt/venv /opt/venv
COPY bot/ /app/bot/
COPY handlers/ /app/handlers/
COPY storage/ /app/storage/
COPY --from=build /build/locales/ /app/bot/locales/
# Bytecode compiled once here: PYTHONDONTWRITEBYTECODE (and a code folder the bot cannot write)
# would otherwise make every start compile our modules again.
RUN /opt/venv/bin/python -m compileall -q /app
# The code is found through PYTHONPATH from any working directory. The working directory is /
# so that the relative default DATABASE_URL (sqlite:///data/bot.sqlite3, ./data when run from a
# checkout) names the /data volume here too, whether or not an --env-file sets it.
WORKDIR /
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONPATH=/app \
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
ENTRYPOINT ["tini", "-e", "143", "--"]
CMD ["python", "-m", "bot"]
