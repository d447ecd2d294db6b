"""Catalog changes: pull requests (POST /catalog/pr, GET /catalog/prs) and local writes (POST /catalog/entries)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth
from portal.schemas.catalog_pr import CatalogEntryBody, CatalogPrBody, CatalogPrListArgs, CatalogPrListSchema
from portal.schemas.common import JobEnvelopeSchema
from portal.services import catalog_pr
from portal.services import jobs as job_service

blp = Blueprint("catalog_pr", __name__, description="Catalog changes as reviewed pull requests")


@blp.route("/catalog/pr")
class CatalogPullRequest(MethodView):
    """Propose a catalog entry as a GitHub pull request."""

    @blp.arguments(CatalogPrBody)
    @blp.response(202, JobEnvelopeSchema)
    @blp.alt_response(400, description="Bad body, unsafe id, or the entry failed validation (details.validation)")
    @blp.alt_response(404, description="`model` is not in the catalog")
    @blp.alt_response(501, description="CATALOG_REPO (or GITHUB_TOKEN) is not set")
    @blp.alt_response(503, description="The job queue is unavailable")
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Queue the PR job; its result has `branch`, `file` and `pullRequest {number, url, htmlUrl, state}`."""
        job = catalog_pr.request_pull_request(body, actor=auth.current_actor())
        return job_service.job_envelope(job), 202


@blp.route("/catalog/prs")
class CatalogPullRequests(MethodView):
    """Pull requests the portal opened, with their state."""

    @blp.arguments(CatalogPrListArgs, location="query")
    @blp.response(200, CatalogPrListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first; `pending=true` keeps the open and merged-but-not-yet-synced ones."""
        rows = catalog_pr.list_pull_requests(pending_only=args["pending"], limit=args["limit"])
        return {"pullRequests": [row.to_dict() for row in rows], "count": len(rows)}


@blp.route("/catalog/entries")
class CatalogEntries(MethodView):
    """Direct writes, for local catalogs that are not git-synced."""

    @blp.arguments(CatalogEntryBody)
    @blp.response(201)
    @blp.alt_response(400, description="The entry is invalid")
    @blp.alt_response(409, description="The id exists, or the catalog root is a git-sync checkout")
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Write `<models>/<id>.json` (refused when the catalog is git-synced: use POST /catalog/pr)."""
        path = catalog_pr.save_local_entry(body["entry"], actor=auth.current_actor())
        return {"status": "created", "id": body["entry"].get("id"), "file": path.name}, 201
