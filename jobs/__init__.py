"""Thin RQ job functions: they take ids and call services inside an app context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import has_app_context


@contextmanager
def app_context() -> Iterator[None]:
    """Use the worker's app context when there is one, else build the app (e.g. a plain `rq worker`)."""
    if has_app_context():
        yield
        return
    from portal import create_app

    app = create_app()
    with app.app_context():
        yield
