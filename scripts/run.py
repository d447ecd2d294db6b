"""`make run`: everything the portal needs, in the foreground; Ctrl-C stops all children.

Redis: the one at REDIS_URL if it answers, else a private redis-server on a free port, else an
embedded fakeredis TCP server (jobs are then not durable). Kubernetes: in-cluster or a kubeconfig
if one is found, else the demo cluster (portal/devcluster). Then migrations, one RQ worker and
gunicorn on http://127.0.0.1:$PORT (default 8080). Every variable set by the caller wins; local state
goes under `.run/` (MODEL_MANAGER_RUN_DIR moves it, e.g. for tests).

Stopping (Ctrl-C, SIGTERM, or a child dying) sends SIGTERM to every child's process group, waits up to
STOP_TIMEOUT seconds, then kills what is left — including RQ work horses, which run in process groups
of their own below the worker — and returns only when every process it started is gone.
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
VENV_BIN = Path(sys.executable).parent
STOP_TIMEOUT = 15.0  # the worker marks its job failed and its horse exits well within this

Children = list[tuple[str, "subprocess.Popen[bytes]"]]


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


def build_env(run_dir: Path) -> dict[str, str]:
    """The children's environment: the caller's, plus local defaults for everything unset."""
    env = dict(os.environ)
    env.setdefault("MODEL_MANAGER_ENV", "development")
    env.setdefault("MODEL_CATALOG_ROOT", str(ROOT / "examples" / "catalog"))
    env.setdefault("WEIGHTS_STORAGE_PATH", str(run_dir / "weights"))
    env.setdefault("STATE_PATH", str(run_dir / "state"))
    env.setdefault("INFERENCE_MODEL_ROOT", "/mnt/models")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(run_dir / "prometheus"))
    Path(env["WEIGHTS_STORAGE_PATH"]).mkdir(parents=True, exist_ok=True)
    Path(env["STATE_PATH"]).mkdir(parents=True, exist_ok=True)
    prom = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir(parents=True)
    return env


class Stack:
    """The processes `make run` started, and how to start and stop them."""

    def __init__(self, env: dict[str, str], run_dir: Path) -> None:
        self.env = env
        self.run_dir = run_dir
        self.children: Children = []
        self.notes: list[str] = []

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start a child in a session (process group) of its own, so Ctrl-C reaches only us."""
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)
        self.children.append((name, proc))
        return proc

    def start_redis(self) -> None:
        """The configured Redis, a private redis-server, or an embedded fake."""
        env = self.env
        if redis_answers(env["REDIS_URL"]):
            parts = urlsplit(env["REDIS_URL"])
            log(f"Redis: using {parts.hostname}:{parts.port or 6379}")
            return
        redis_port = free_port()
        if shutil.which("redis-server"):
            argv = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"]
            argv += ["--save", "", "--appendonly", "no", "--dir", str(self.run_dir)]
            self.spawn("redis", argv)
            note = f"Redis: started a private redis-server on port {redis_port}"
        else:
            self.spawn("fakeredis", [sys.executable, str(ROOT / "scripts" / "fakeredis_server.py"), str(redis_port)])
            note = "Redis: WARNING no Redis found; using an in-memory fakeredis server: jobs are not durable"
            self.notes.append("jobs are not durable (fakeredis)")
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        wait_for_port("127.0.0.1", redis_port)
        log(note)

    def start_cluster(self) -> bool:
        """A configured cluster, or the demo cluster; False when the demo cluster did not start."""
        if kubernetes_configured(self.env):
            log("Kubernetes: using the configured cluster (in-cluster or kubeconfig)")
            return True
        dev_port = free_port()
        kubeconfig = self.run_dir / "kubeconfig"
        kubeconfig.unlink(missing_ok=True)
        flask = str(VENV_BIN / "flask")
        self.spawn(
            "devcluster",
            [flask, "--app", "wsgi", "devcluster", "--port", str(dev_port), "--kubeconfig", str(kubeconfig)],
        )
        if not wait_for_port("127.0.0.1", dev_port):
            log("the demo cluster did not start")
            return False
        self.env["KUBECONFIG"] = str(kubeconfig)
        self.env["MODEL_MANAGER_DEVCLUSTER"] = "true"
        log(f"Kubernetes: no cluster configured; started the demo cluster on port {dev_port}")
        self.notes.append("demo cluster")
        return True

    def start_portal(self, port: str) -> None:
        """One RQ worker and gunicorn."""
        self.spawn("worker", [str(VENV_BIN / "flask"), "--app", "wsgi", "worker"])
        gunicorn = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")]
        self.spawn("gunicorn", [*gunicorn, "--bind", f"127.0.0.1:{port}", "wsgi:app"])
        if wait_for_port("127.0.0.1", int(port), timeout=30):
            notes = f" ({', '.join(self.notes)})" if self.notes else ""
            log(f"Portal: http://127.0.0.1:{port}/ui/   API docs: http://127.0.0.1:{port}/docs{notes}")
            log(
                f"Catalog: {self.env['MODEL_CATALOG_ROOT']}   weights: {self.env['WEIGHTS_STORAGE_PATH']}   "
                "Ctrl-C stops everything"
            )

    def watch(self) -> int:
        """Wait until a child exits or we are told to stop; then stop everything."""
        tracked: set[int] = set()
        try:
            while True:
                for name, proc in self.children:
                    if proc.poll() is not None:
                        log(f"{name} exited with code {proc.returncode}; stopping the rest")
                        return self.stop(proc.returncode or 1, tracked)
                # Remember grandchildren (work horses) now: once their parent exits they are re-parented.
                tracked |= descendants({proc.pid for _, proc in self.children})
                time.sleep(0.5)
        except KeyboardInterrupt:
            log("stopping")
            return self.stop(0, tracked)

    def stop(self, code: int, tracked: set[int] | None = None) -> int:
        """SIGTERM every child's group, wait (bounded), then SIGKILL every group left, horses included."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        tracked = set(tracked or ()) | descendants({proc.pid for _, proc in self.children})
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and (self._running() or alive(tracked)):
            tracked |= descendants({proc.pid for _, proc in self.children if proc.poll() is None})
            time.sleep(0.1)
        for pid in alive(tracked) | {proc.pid for _, proc in self.children if proc.poll() is None}:
            log(f"process {pid} did not stop within {STOP_TIMEOUT:.0f} s; killing its process group")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        for _name, proc in self.children:
            proc.wait()
        end = time.monotonic() + 5
        while alive(tracked) and time.monotonic() < end:
            time.sleep(0.05)  # killed grandchildren are reaped by init; wait until they are gone
        return code

    def _running(self) -> bool:
        return any(proc.poll() is None for _, proc in self.children)


def _proc_table() -> dict[int, int]:
    """pid → parent pid of every process (Linux /proc); empty elsewhere."""
    table: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            table[int(name)] = int(fields[1])
    return table


def descendants(pids: set[int]) -> set[int]:
    """Every live process below `pids`."""
    table = _proc_table()
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        children = {pid for pid, parent in table.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids of `pids` that still run (zombies count as gone)."""
    table = _proc_table()
    return {pid for pid in pids if pid in table}


def main() -> int:
    """Start the stack and wait; stop every child on Ctrl-C, SIGTERM or when one dies."""
    run_dir = Path(os.environ.get("MODEL_MANAGER_RUN_DIR") or ROOT / ".run")
    run_dir.mkdir(parents=True, exist_ok=True)
    port = os.environ.get("PORT", "8080")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", int(port))) == 0:
            log(f"port {port} is already in use (another `make run`?); stop it or choose another with PORT=...")
            return 1
    stack = Stack(build_env(run_dir), run_dir)

    def handle(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handle)
    try:
        stack.start_redis()
        if not stack.start_cluster():
            return stack.stop(1)
        migrate = [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"]
        returncode = subprocess.run(migrate, cwd=ROOT, env=stack.env, check=False).returncode
        if returncode != 0:
            log("database migration failed (see above)")
            return stack.stop(returncode)
        stack.start_portal(port)
    except KeyboardInterrupt:
        log("stopping")
        return stack.stop(0)
    return stack.watch()


if __name__ == "__main__":
    sys.exit(main())
