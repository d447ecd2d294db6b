"""Run every benchmark module and write docs/benchmarks.md with the machine and the date."""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each module exposes run() -> str (a Markdown section). Order is the order in the report.
MODULES = [
    "bench.bench_catalog",
    "bench.bench_weights",
    "bench.bench_discovery",
    "bench.bench_fit",
    "bench.bench_contract",
    "bench.bench_load",
    "bench.bench_deployments",
]


def machine() -> str:
    """A one-line description of this machine."""
    mem = ""
    try:
        with open("/proc/meminfo") as handle:
            kb = int(handle.readline().split()[1])
            mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}, {platform.system()}"


def _merge(existing: str, fresh: list[str]) -> list[str]:
    """A partial run (`python -m bench bench_load`) replaces its own sections and keeps the others."""
    kept = ["## " + part for part in existing.split("\n## ")[1:]]
    headings = {section.splitlines()[0]: section for section in fresh}
    merged = [headings.pop(section.splitlines()[0], section.rstrip() + "\n") for section in kept]
    return merged + list(headings.values())


def _stamped(section: str, stamp: str) -> str:
    heading, _, body = section.partition("\n")
    return f"{heading}\n\n{stamp}{body}"


def main() -> int:
    """Run the benchmarks that exist and write the report."""
    only = set(sys.argv[1:])
    sections = []
    for name in MODULES:
        short = name.split(".")[-1]
        if only and short not in only:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        started = time.perf_counter()
        print(f"[bench] {short} …", flush=True)
        sections.append(module.run())
        print(f"[bench] {short} done in {time.perf_counter() - started:.1f}s", flush=True)
    out = ROOT / "docs" / "benchmarks.md"
    header = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}. Produced by `make bench`;",
        "figures are measured, not asserted in tests. Targets come from the issues.",
        "",
    ]
    if only and out.exists():
        # A partial run keeps the date line of the full run; its own sections say when they were measured.
        existing = out.read_text()
        header = [*existing.split("\n## ", 1)[0].rstrip().splitlines(), ""]
        stamp = f"_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f}._\n"
        sections = _merge(existing, [_stamped(section, stamp) for section in sections])
    report = [*header, *sections]
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(report).rstrip() + "\n")
    print(f"[bench] wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
