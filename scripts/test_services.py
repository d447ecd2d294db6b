"""Run a command (the test suite) with PostgreSQL and Redis available, starting private ones if needed.

    python scripts/test_services.py [--run-dir DIR] -- COMMAND [ARGS...]

`make test` wraps the suite with this, so it needs nothing running beforehand:

- `TEST_REDIS_URL` / `TEST_POSTGRES_URL` set by the caller are used as they are (they must answer);
- otherwise the defaults (Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 as `postgres`,
  database `test`, created when missing) are used when they answer;
- otherwise a private `redis-server` and a private PostgreSQL (`initdb` into `<run-dir>/test-pg`
  from Debian's /usr/lib/postgresql/*/bin, run as the `postgres` user when we are root, because
  PostgreSQL refuses to run as root) start on free loopback ports and are stopped afterwards.

Binaries the run needs (redis-server, PostgreSQL, chromium for the browser tests, kubectl for the
kubectl tests) are installed with apt-get when missing and we are root (CI); otherwise the one
`apt-get install` line is printed and nothing runs. The command runs with TEST_REDIS_URL and
TEST_POSTGRES_URL exported; its exit status is ours.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START_TIMEOUT = 60.0


def log(message: str) -> None:
    """One line on stderr, prefixed so it stands out from the suite's output."""
    print(f"[test-services] {message}", file=sys.stderr, flush=True)


class SetupError(RuntimeError):
    """The services cannot be provided; the message says what to do."""


# --------------------------------------------------------------------------- probes


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_answers(url: str) -> bool:
    """True when a Redis server at `url` answers PING."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def _libpq_url(url: str, database: str | None = None) -> str:
    """`postgresql+psycopg://…` as libpq wants it, optionally on another database."""
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    path = f"/{database}" if database is not None else parts.path
    return parts._replace(path=path, query="").geturl()


def postgres_answers(url: str) -> bool:
    """True when PostgreSQL at `url` accepts a connection to its `postgres` database."""
    import psycopg

    try:
        with psycopg.connect(_libpq_url(url, "postgres"), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def ensure_database(url: str) -> None:
    """Create the database named in `url` when it does not exist."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/") or "test"
    with psycopg.connect(_libpq_url(url, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log(f"created database {name}")


def wait_until(check: Callable[[], bool], timeout: float = START_TIMEOUT) -> bool:
    """Poll `check()` until it is true or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- binaries


def postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, or None."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


@dataclass
class Needs:
    """What this run needs from the machine: which services to start, which packages are missing."""

    redis_url: str | None
    postgres_url: str | None
    packages: list[str] = field(default_factory=list)


def assess(env: dict[str, str]) -> Needs:
    """Decide what is used as is, what must be started, and which Debian packages are missing."""
    redis_url = env.get("TEST_REDIS_URL") or None
    postgres_url = env.get("TEST_POSTGRES_URL") or None
    if redis_url is None and redis_answers(DEFAULT_REDIS_URL):
        redis_url = DEFAULT_REDIS_URL
    if postgres_url is None and postgres_answers(DEFAULT_POSTGRES_URL):
        postgres_url = DEFAULT_POSTGRES_URL
    packages = []
    if redis_url is None and shutil.which("redis-server") is None:
        packages.append("redis-server")
    if postgres_url is None and postgres_bin_dir() is None:
        packages.append("postgresql")
    if shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists():
        packages.append("chromium")
    if shutil.which("kubectl") is None:
        packages.append("kubernetes-client")
    return Needs(redis_url, postgres_url, packages)


def install_line(packages: Sequence[str]) -> str:
    """The one command that installs what is missing."""
    return f"sudo apt-get install -y {' '.join(packages)}"


def install(packages: Sequence[str]) -> None:
    """Install Debian packages (root only); raise SetupError with the command otherwise."""
    if not packages:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SetupError(f"missing: {', '.join(packages)}; install them with:\n    {install_line(packages)}")
    log(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, stdout=subprocess.DEVNULL)


# --------------------------------------------------------------------------- private services


@dataclass
class Private:
    """A server process we started, and how to stop it."""

    name: str
    process: subprocess.Popen[bytes]
    stop_command: list[str] | None = None
    cleanup: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the server and wait for it; kill it if it does not go within 30 s."""
        if self.process.poll() is None:
            if self.stop_command:
                subprocess.run(self.stop_command, capture_output=True, timeout=60, check=False)
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)
        log(f"stopped {self.name} (pid {self.process.pid})")


def start_redis(run_dir: Path) -> tuple[str, Private]:
    """A private redis-server on a free loopback port, without persistence."""
    port = free_port()
    work = run_dir / "test-redis"
    work.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("redis-server") or "redis-server"
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(work), "--daemonize", "no", "--loglevel", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}"
    server = Private("redis-server", process)
    if not wait_until(lambda: process.poll() is not None or redis_answers(url)) or process.poll() is not None:
        server.stop()
        raise SetupError(f"the private redis-server did not start (exit status {process.poll()})")
    log(f"started redis-server (pid {process.pid}) on 127.0.0.1:{port}")
    return url, server


def _as_postgres_user(command: list[str]) -> list[str]:
    """Run as the `postgres` system user when we are root (PostgreSQL refuses to run as root).

    setpriv execs the command itself, so the pid we hold is the server's and our stop signal
    reaches it; runuser (which stays in between) is the fallback.
    """
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *command]
    return ["runuser", "-u", "postgres", "--", *command]


def _postgres_data_dir(run_dir: Path) -> tuple[Path, list[Path]]:
    """Where the private cluster lives; as root, somewhere the `postgres` user can reach."""
    base = run_dir / "test-pg"
    if os.geteuid() != 0:
        base.mkdir(parents=True, exist_ok=True)
        return base, []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise SetupError("running as root needs the postgres system user (apt-get install postgresql)") from exc
    base.mkdir(parents=True, exist_ok=True)
    os.chown(base, user.pw_uid, user.pw_gid)
    reachable = subprocess.run(_as_postgres_user(["test", "-w", str(base)]), check=False)
    if reachable.returncode == 0:
        return base, []
    # The checkout is not reachable by the postgres user (e.g. under a private home): use a
    # temporary directory instead, removed afterwards.
    temporary = Path(tempfile.mkdtemp(prefix="model-manager-test-pg-"))
    os.chown(temporary, user.pw_uid, user.pw_gid)
    return temporary, [temporary]


def start_postgres(run_dir: Path) -> tuple[str, Private]:
    """A private PostgreSQL cluster (initdb once, trust auth) on a free loopback port."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SetupError(f"PostgreSQL binaries not found; install them with:\n    {install_line(['postgresql'])}")
    base, cleanup = _postgres_data_dir(run_dir)
    data = base / "data"
    version_file = data / "PG_VERSION"
    if version_file.exists() and version_file.read_text().strip() != bin_dir.parent.name:
        shutil.rmtree(data)  # made by another PostgreSQL major version: test data, start afresh
    if not version_file.exists():
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        done = subprocess.run(_as_postgres_user([*initdb, "--no-sync"]), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SetupError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
    port = free_port()
    options = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={base}", "-c", "fsync=off"]
    options += ["-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"]
    command = _as_postgres_user([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), *options])
    log_file = (base / "postgres.log").open("ab")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
    # pg_ctl's "fast" shutdown disconnects clients and waits until the server has exited.
    stop = _as_postgres_user([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"])
    server = Private("postgres", process, stop, cleanup)
    if not wait_until(lambda: process.poll() is not None or postgres_answers(url)) or process.poll() is not None:
        server.stop()
        raise SetupError(f"the private PostgreSQL did not start; see {base / 'postgres.log'}")
    log(f"started PostgreSQL (pid {process.pid}) on 127.0.0.1:{port}, data in {data}")
    return url, server


# --------------------------------------------------------------------------- the run


@contextlib.contextmanager
def services(run_dir: Path, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The TEST_* variables for the suite, with private servers running for the duration."""
    needs = assess(env)
    install(needs.packages)
    started: list[Private] = []
    variables: dict[str, str] = {}
    wanted = (
        ("TEST_REDIS_URL", needs.redis_url, start_redis, redis_answers),
        ("TEST_POSTGRES_URL", needs.postgres_url, start_postgres, postgres_answers),
    )
    try:
        for name, configured, start, answers in wanted:
            if configured is None:
                variables[name], server = start(run_dir)
                started.append(server)
            elif not answers(configured):
                raise SetupError(f"{name}={configured} does not answer")
            else:
                variables[name] = configured
        ensure_database(variables["TEST_POSTGRES_URL"])
        yield variables
    finally:
        for server in reversed(started):
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, provide the services, run the command, stop what we started."""
    parser = argparse.ArgumentParser(prog="scripts/test_services.py", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run", help="where private servers keep data")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    # Stop cleanly on SIGTERM too (CI cancelling a job): the finally blocks stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with services(args.run_dir.resolve(), dict(os.environ)) as variables:
            for name, value in variables.items():
                log(f"{name}={value}")
            return subprocess.run(command, env={**os.environ, **variables}, check=False).returncode
    except SetupError as exc:
        log(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
