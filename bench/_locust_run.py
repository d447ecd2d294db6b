"""Run one locust user class for an exact window and print its stats as JSON (a subprocess of bench_load).

locust's own `--run-time` counts from process start (slow imports on a loaded machine shorten the window), so
the users are spawned first, the statistics reset, and then measured for exactly `seconds`.

Usage: python -m bench._locust_run <UserClass> <users> <seconds> <host>
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from locust.env import Environment  # noqa: E402

from bench import locustfile  # noqa: E402


def main() -> None:
    """Spawn, reset, measure, print."""
    user, users, seconds, host = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    env = Environment(user_classes=[getattr(locustfile, user)], host=host)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    if runner.spawning_greenlet is not None:
        runner.spawning_greenlet.join()
    env.stats.reset_all()
    started = time.monotonic()
    gevent.sleep(seconds)
    window = time.monotonic() - started
    rows = {
        name: {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50": entry.get_response_time_percentile(0.5),
            "p99": entry.get_response_time_percentile(0.99),
            "rps": entry.num_requests / window,
        }
        for (name, _method), entry in env.stats.entries.items()
    }
    total = env.stats.total
    rows["all"] = {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "p50": total.get_response_time_percentile(0.5),
        "p99": total.get_response_time_percentile(0.99),
        "rps": total.num_requests / window,
    }
    errors = [f"{e.method} {e.name}: {e.error} x{e.occurrences}" for e in env.stats.errors.values()]
    runner.quit()
    print(json.dumps({"rows": rows, "errors": errors, "seconds": window}))


if __name__ == "__main__":
    main()
