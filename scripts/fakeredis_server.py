"""An in-memory Redis-compatible TCP server (fakeredis) for `make run` when no Redis exists."""

from __future__ import annotations

import sys

from fakeredis import TcpFakeServer


def main() -> None:
    """Serve on 127.0.0.1:<port> until killed."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    server.serve_forever()


if __name__ == "__main__":
    main()
