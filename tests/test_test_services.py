"""scripts/test_services.py: `make test` brings up its own PostgreSQL and Redis where none answers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import test_services

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "test_services.py"


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode == 0


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `command` from the checkout and capture its output."""
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=280, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_caller_settings_are_used_as_they_are() -> None:
    needs = test_services.assess(
        {"TEST_REDIS_URL": "redis://127.0.0.1:1", "TEST_POSTGRES_URL": "postgresql+psycopg://u@127.0.0.1:1/t"}
    )
    assert needs.redis_url == "redis://127.0.0.1:1"
    assert needs.postgres_url == "postgresql+psycopg://u@127.0.0.1:1/t"
    assert "redis-server" not in needs.packages and "postgresql" not in needs.packages


def test_a_caller_setting_that_does_not_answer_stops_the_run(tmp_path: Path) -> None:
    env = {**os.environ, "TEST_REDIS_URL": "redis://127.0.0.1:1"}
    done = run([sys.executable, str(SCRIPT), "--run-dir", str(tmp_path), "--", "true"], env)
    assert done.returncode == 2
    assert "TEST_REDIS_URL=redis://127.0.0.1:1 does not answer" in done.stderr


def test_install_line_names_every_missing_package() -> None:
    line = test_services.install_line(["postgresql", "redis-server", "kubernetes-client"])
    assert line == "sudo apt-get install -y postgresql redis-server kubernetes-client"


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare(), reason="needs unshare -n (root or user namespaces) and ip")
def test_private_services_in_an_empty_network_namespace(tmp_path: Path) -> None:
    """Where nothing listens (a fresh network namespace), both servers start, serve a database test, stop."""
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_REDIS_URL", "TEST_POSTGRES_URL")}
    env["TEST_DATABASE"] = "postgres"
    inner = [sys.executable, str(SCRIPT), "--run-dir", str(tmp_path / "run"), "--"]
    inner += [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "tests/test_migrations.py",
    ]
    script = "ip link set lo up && exec " + " ".join(f"'{part}'" for part in inner)
    done = run(["unshare", "-n", "sh", "-c", script], env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"\d+ passed", done.stdout), output
    assert re.search(r"TEST_POSTGRES_URL=postgresql\+psycopg://postgres@127\.0\.0\.1:\d+/test", output)
    assert "TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/" not in output  # not the default
    started = {name: int(pid) for name, pid in re.findall(r"started (redis-server|PostgreSQL) \(pid (\d+)\)", output)}
    assert set(started) == {"redis-server", "PostgreSQL"}, output
    assert "stopped postgres" in output and "stopped redis-server" in output
    assert not [name for name, pid in started.items() if _alive(pid)]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to become nobody")
def test_a_user_without_root_gets_the_apt_get_line(tmp_path: Path) -> None:
    """A missing binary (kubectl, hidden by PATH) is not installed by an ordinary user: the line is printed."""
    env = {k: v for k, v in os.environ.items() if k.startswith("TEST_")}
    env.update(PATH=str(tmp_path), HOME=str(tmp_path))
    command = [
        str(shutil.which("setpriv")),
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        sys.executable,
        str(SCRIPT),
    ]
    done = run([*command, "--run-dir", str(tmp_path), "--", "true"], env)
    assert done.returncode == 2, done.stderr
    assert "sudo apt-get install -y kubernetes-client" in done.stderr
