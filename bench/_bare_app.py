"""A bare Flask app, the baseline for the portal's saturation throughput (same gunicorn settings)."""

from __future__ import annotations

from flask import Flask, jsonify

app = Flask(__name__)
PAGE = "<!doctype html><html><body>" + "<p>bare</p>" * 200 + "</body></html>"


@app.get("/healthz")
def healthz() -> object:
    """Always fine."""
    return jsonify({"status": "ok"})


@app.get("/page")
def page() -> str:
    """A static page about the size of a portal partial."""
    return PAGE
