"""A bare Flask app for `make load`'s comparison: the same payloads, no framework of ours around them.

`BARE_MODELS_JSON` names a file with the bytes `/models` answers; `/ui/catalog` renders a plain page of the
same entries with Jinja. Run under the same gunicorn settings as the portal (`gunicorn bench.bare_app:app`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask, Response, render_template_string

app = Flask(__name__)
_MODELS = Path(os.environ["BARE_MODELS_JSON"]).read_bytes()
_ENTRIES = json.loads(_MODELS)
_PAGE = """<!doctype html><html><head><title>Catalog</title></head><body><table>
{% for e in entries %}<tr><td>{{ e.id }}</td><td>{{ e.displayName }}</td><td>{{ e.hfModelId }}</td></tr>{% endfor %}
</table></body></html>"""


@app.get("/models")
def models() -> Response:
    """The catalog JSON."""
    return Response(_MODELS, mimetype="application/json")


@app.get("/ui/catalog")
def catalog() -> str:
    """A plain catalog page."""
    return render_template_string(_PAGE, entries=_ENTRIES)
