# One image; web and worker differ only by command:
#   web:    gunicorn -c gunicorn.conf.py wsgi:app        (default)
#   worker: flask --app wsgi worker
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLASK_APP=wsgi \
    STATE_PATH=/app/state \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN groupadd --gid 1000 app && useradd --uid 1000 --gid app --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app portal ./portal
COPY --chown=app:app jobs ./jobs
COPY --chown=app:app templates ./templates
COPY --chown=app:app static ./static
COPY --chown=app:app migrations ./migrations
COPY --chown=app:app wsgi.py gunicorn.conf.py docker-entrypoint.sh ./
RUN mkdir -p /app/state /tmp/prometheus && chown app:app /app/state /tmp/prometheus
USER app
EXPOSE 8080
ENTRYPOINT ["/app/docker-entrypoint.sh"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
