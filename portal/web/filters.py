"""Template filters used across the portal (sizes, durations)."""

from __future__ import annotations

from flask import Flask

from portal.services.weights import human_size


def human_bytes(value: int | float | None) -> str:
    """Bytes as `4.5 MiB` (empty for None)."""
    return "" if value is None else human_size(int(value))


def duration(seconds: float | None) -> str:
    """Seconds as `1 h 02 min`, `3 min 05 s` or `12 s`."""
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def register(app: Flask) -> None:
    """Make the filters available to every template."""
    app.add_template_filter(human_bytes, "human_bytes")
    app.add_template_filter(duration, "duration")
