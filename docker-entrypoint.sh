#!/bin/sh
# Apply migrations, reset the Prometheus multiprocess directory, then run the command.
set -eu
rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"/* 2>/dev/null || true
flask --app wsgi db upgrade
exec "$@"
