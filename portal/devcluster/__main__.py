"""`python -m portal.devcluster`: serve the dev cluster in the foreground."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from portal.devcluster.cluster import run_devcluster


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m portal.devcluster", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--seed", default=None, help="seed YAML file (default: portal/devcluster/seed.yaml)")
    parser.add_argument("--kubeconfig", default=None, help="write a kubeconfig for the server to this path")
    parser.add_argument("--ready-delay", type=float, default=3.0, help="seconds until an InferenceService is Ready")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    run_devcluster(args.host, args.port, args.seed, args.kubeconfig, args.ready_delay)


if __name__ == "__main__":
    main()
