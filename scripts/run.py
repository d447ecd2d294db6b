"""`make run`: everything the portal needs, in the foreground; Ctrl-C stops all children.

Redis: the one at REDIS_URL if it answers, else a private redis-server on a free port, else an
embedded fakeredis TCP server (jobs are then not durable). Kubernetes: in-cluster or a kubeconfig
if one is found, else the demo cluster (portal/devcluster). Then migrations, one RQ worker and
gunicorn on http://127.0.0.1:$PORT (default 8080). Every variable set by the caller wins.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
VENV_BIN = Path(sys.executable).parent


def log(message: str) -> None:
    """Print a line prefixed so it stands out from the children's logs."""
    print(f"[make run] {message}", flush=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_answers(url: str) -> bool:
    """True when a Redis at `url` answers PING within a second."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
        return True
    except redis.RedisError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> bool:
    """Wait until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def kubernetes_configured(env: dict[str, str]) -> bool:
    """True when in-cluster config or a kubeconfig file exists."""
    if env.get("KUBERNETES_SERVICE_HOST"):
        return True
    kubeconfig = env.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p)


def main() -> int:
    """Start the stack and wait; stop every child on Ctrl-C or when one dies."""
    RUN_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("MODEL_MANAGER_ENV", "development")
    env.setdefault("MODEL_CATALOG_ROOT", str(ROOT / "examples" / "catalog"))
    env.setdefault("WEIGHTS_STORAGE_PATH", str(RUN_DIR / "weights"))
    env.setdefault("STATE_PATH", str(RUN_DIR / "state"))
    env.setdefault("INFERENCE_MODEL_ROOT", "/mnt/models")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(RUN_DIR / "prometheus"))
    port = env.get("PORT", "8080")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", int(port))) == 0:
            log(f"port {port} is already in use (another `make run`?); stop it or choose another with PORT=...")
            return 1
    Path(env["WEIGHTS_STORAGE_PATH"]).mkdir(parents=True, exist_ok=True)
    Path(env["STATE_PATH"]).mkdir(parents=True, exist_ok=True)
    prom = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir(parents=True)

    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    extra_notes: list[str] = []

    def spawn(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        children.append((name, proc))
        return proc

    # Redis: the configured one, a private server, or an embedded fake.
    if redis_answers(env["REDIS_URL"]):
        log(f"Redis: using {urlsplit(env['REDIS_URL']).hostname}:{urlsplit(env['REDIS_URL']).port or 6379}")
    elif shutil.which("redis-server"):
        redis_port = free_port()
        spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(RUN_DIR),
            ],
        )
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        wait_for_port("127.0.0.1", redis_port)
        log(f"Redis: started a private redis-server on port {redis_port}")
    else:
        redis_port = free_port()
        spawn("fakeredis", [sys.executable, str(ROOT / "scripts" / "fakeredis_server.py"), str(redis_port)])
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        wait_for_port("127.0.0.1", redis_port)
        log("Redis: WARNING no Redis found; using an in-memory fakeredis server: jobs are not durable")
        extra_notes.append("jobs are not durable (fakeredis)")

    # Kubernetes: a configured cluster or the demo cluster.
    if kubernetes_configured(env):
        log("Kubernetes: using the configured cluster (in-cluster or kubeconfig)")
    else:
        dev_port = free_port()
        kubeconfig = RUN_DIR / "kubeconfig"
        kubeconfig.unlink(missing_ok=True)
        spawn(
            "devcluster",
            [
                str(VENV_BIN / "flask"),
                "--app",
                "wsgi",
                "devcluster",
                "--port",
                str(dev_port),
                "--kubeconfig",
                str(kubeconfig),
            ],
        )
        if not wait_for_port("127.0.0.1", dev_port):
            log("the demo cluster did not start")
            return stop(children, 1)
        env["KUBECONFIG"] = str(kubeconfig)
        env["MODEL_MANAGER_DEVCLUSTER"] = "true"
        log(f"Kubernetes: no cluster configured; started the demo cluster on port {dev_port}")
        extra_notes.append("demo cluster")

    migrate = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=False
    )
    if migrate.returncode != 0:
        log("database migration failed (see above)")
        return stop(children, migrate.returncode)

    spawn("worker", [str(VENV_BIN / "flask"), "--app", "wsgi", "worker"])
    spawn(
        "gunicorn",
        [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}", "wsgi:app"],
    )
    if wait_for_port("127.0.0.1", int(port), timeout=30):
        notes = f" ({', '.join(extra_notes)})" if extra_notes else ""
        log(f"Portal: http://127.0.0.1:{port}/ui/   API docs: http://127.0.0.1:{port}/docs{notes}")
        log(f"Catalog: {env['MODEL_CATALOG_ROOT']}   weights: {env['WEIGHTS_STORAGE_PATH']}   Ctrl-C stops everything")

    def handle(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handle)
    try:
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    log(f"{name} exited with code {proc.returncode}; stopping the rest")
                    return stop(children, proc.returncode or 1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("stopping")
        return stop(children, 0)


def stop(children: list[tuple[str, subprocess.Popen[bytes]]], code: int) -> int:
    """Terminate every child (and its process group), then kill what is left."""
    for _name, proc in reversed(children):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for _name, proc in children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return code


if __name__ == "__main__":
    sys.exit(main())
