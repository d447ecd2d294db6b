"""The dev-cluster command: `python -m portal.devcluster` (`make devcluster`), default port 8001.

`flask --app wsgi devcluster` is the same command registered in the portal's CLI.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

DEFAULT_PORT = 8001
"""The dev cluster's one default port (`make devcluster`, the docs and this command agree)."""


@click.command("devcluster")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML seed file with nodes, PVCs, secrets, runtimes (default: the bundled demo seed).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".run/kubeconfig"),
    show_default=True,
    help="Where to write the kubeconfig that points at the dev cluster.",
)
@click.option(
    "--ready-delay",
    default=3.0,
    show_default=True,
    type=float,
    help="Seconds the simulated KServe controller takes to make a model Ready.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log every request.")
def devcluster_command(
    *, host: str, port: int, seed: Path | None, kubeconfig: Path, ready_delay: float, verbose: bool
) -> None:
    """Run the simulated Kubernetes API + KServe controller (demo mode and tests)."""
    from portal.devcluster.cluster import run_devcluster

    if verbose:
        logging.getLogger("portal.devcluster").setLevel(logging.DEBUG)
    run_devcluster(host=host, port=port, seed=seed, kubeconfig_path=kubeconfig, ready_delay=ready_delay)


def main() -> None:
    """`python -m portal.devcluster`: log to stderr and run the command."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    devcluster_command(prog_name="python -m portal.devcluster")


if __name__ == "__main__":
    main()
