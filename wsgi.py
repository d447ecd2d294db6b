"""gunicorn target `wsgi:app`; a bad setting stops start-up with one line naming it."""

from __future__ import annotations

import sys

from portal import create_app
from portal.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    print(f"model-manager: configuration error: {exc}", file=sys.stderr)
    sys.exit(2)
