"""History API (reference §6.5): query with filters, CSV export, clear."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth
from portal.schemas.common import HistoryArgs
from portal.services import history

blp = Blueprint("history", __name__, description="What the portal did, and who did it")


@blp.route("/history")
class History(MethodView):
    """The history timeline."""

    @blp.arguments(HistoryArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """Newest-first records; `format=csv` downloads them as CSV."""
        since = history.parse_since(args.get("since"))
        rows, total = history.query_events(
            limit=args["limit"],
            offset=args["offset"],
            event=args.get("event"),
            model_id=args.get("modelId"),
            since=since,
        )
        if args["format"] == "csv":
            return Response(
                history.to_csv(rows),
                mimetype="text/csv",
                headers={"Content-Disposition": "attachment; filename=history.csv"},
            )
        return {
            "events": [row.to_dict() for row in rows],
            "total": total,
            "limit": args["limit"],
            "offset": args["offset"],
        }

    @blp.response(200)
    def delete(self) -> dict[str, Any]:
        """Clear the history."""
        count = history.clear(actor=auth.current_actor())
        return {"status": "cleared", "deleted": count}
