"""Flask commands: worker, devcluster, and the area commands (catalog validate, …)."""

from __future__ import annotations

import socket
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from portal.devcluster.__main__ import devcluster_command
from portal.extensions import current_settings, db, redis_holder


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty (for tests and scripts).")
@click.option("--name", default=None, help="Worker name (default: host and pid).")
@with_appcontext
def worker_command(burst: bool, name: str | None) -> None:
    """Run an RQ worker for the portal's queue inside the app context."""
    from portal.worker import PortalWorker

    holder = redis_holder(current_app)
    # Forked horses must not share the parent's pooled connections.
    db.engine.dispose()
    worker = PortalWorker(
        [holder.queue],
        connection=holder.connection,
        name=name or f"{socket.gethostname()}-{__import__('os').getpid()}",
    )
    worker.app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker.work(burst=burst, with_scheduler=False)


@click.group("catalog")
def catalog_group() -> None:
    """Catalog commands."""


@catalog_group.command("validate")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--offline", is_flag=True, help="Skip the cluster checks (they report warn).")
@with_appcontext
def catalog_validate_command(files: tuple[Path, ...], offline: bool) -> None:
    """Validate catalog entry files (default: every *.json of the catalog); exit 1 when one is invalid.

    Runs the same checks as POST /catalog/validate: schema, manifest against the KServe CRD, vLLM
    architecture, fit on the targeted GPU, PVC, weights, secrets, configmaps, GPU capacity, runtime.
    Checks that need the cluster or the Hub warn when those cannot be reached.
    """
    from portal.services.validation import validate_file

    settings = current_settings()
    paths = list(files) or sorted(settings.catalog_models_dir.glob("*.json"))
    failed = 0
    for path in paths:
        result = validate_file(path, use_cluster=not offline)
        failed += 0 if result["valid"] else 1
        click.echo(f"{path}: {'valid' if result['valid'] else 'INVALID'}")
        for check in result["checks"]:
            click.echo(f"  [{check['status']}] {check['name']}: {check['message']}")
    click.echo(f"{len(paths)} file(s), {failed} invalid")
    if failed:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(worker_command)
    app.cli.add_command(devcluster_command)
    app.cli.add_command(catalog_group)
