"""`DevCluster`: the dev cluster as an object to start, poke and stop (demo mode and tests)."""

from __future__ import annotations

import copy
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import yaml

from portal.devcluster import errors
from portal.devcluster.apiserver import ApiServer
from portal.devcluster.controller import KServeController
from portal.devcluster.messages import Request, Response, status_response
from portal.devcluster.resources import ResourceType, lookup_kind
from portal.devcluster.seed import SeedSource, load_into, read_seed
from portal.devcluster.server import DISCONNECT, DevHTTPServer
from portal.devcluster.store import Store

log = logging.getLogger("portal.devcluster")

DEFAULT_TOKEN = "devcluster-token"


@dataclass(frozen=True)
class RecordedRequest:
    """A request the dev cluster received, for tests that count calls."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str


@dataclass
class _Fault:
    status: int | None  # None: drop the connection
    remaining: int
    method: str | None
    path: str | None
    message: str | None
    reason: str | None

    def matches(self, req: Request) -> bool:
        """True when this fault applies to `req`."""
        return (self.method is None or self.method.upper() == req.method) and (
            self.path is None or self.path in req.path
        )


class DevCluster:
    """A Kubernetes API server with KServe on loopback, seeded from YAML.

    `seed` is a YAML file path, YAML text, a list of object dicts, or None for the default seed
    (`portal/devcluster/seed.yaml`); pass `[]` for an empty cluster. InferenceServices turn Ready
    `ready_delay` seconds after their pods are scheduled. With `require_token`, requests must carry
    `Authorization: Bearer <token>` (the kubeconfig written by `write_kubeconfig` does).
    """

    def __init__(
        self,
        seed: SeedSource = None,
        ready_delay: float = 3.0,
        *,
        token: str = DEFAULT_TOKEN,
        require_token: bool = False,
    ) -> None:
        self.token = token
        self._offset = 0.0
        self._latency = 0.0
        self._faults: list[_Fault] = []
        self._faults_lock = threading.Lock()
        self.requests: deque[RecordedRequest] = deque(maxlen=10_000)
        self.store = Store()
        self.controller = KServeController(self.store, self.now, ready_delay)
        self.api = ApiServer(self.store, self.controller, self.now, token=token if require_token else None)
        self._server: DevHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        load_into(self.store, read_seed(seed), self.now)
        self.api.reconcile()

    # ------------------------------------------------------------------ lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; return the base URL (`http://127.0.0.1:<port>`)."""
        if self._server is not None:
            raise RuntimeError("the dev cluster is already running")
        server = DevHTTPServer((host, port), self._handle)
        bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
        self._url = f"http://{bound_host}:{bound_port}"
        self.api.server_address = f"{bound_host}:{bound_port}"
        self.api.stopping.clear()
        self._server = server
        # A short poll interval keeps stop() fast (the default 0.5 s is paid on every test teardown).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="devcluster", daemon=True
        )
        self._thread.start()
        log.info("devcluster: serving the Kubernetes API on %s", self._url)
        return self._url

    def stop(self) -> None:
        """Stop serving and cut open connections (watch streams included)."""
        server, self._server = self._server, None
        if server is None:
            return
        self.api.stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("devcluster: stopped")

    def __enter__(self) -> DevCluster:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL; raises when the server has not been started."""
        if self._url is None:
            raise RuntimeError("the dev cluster has not been started")
        return self._url

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._server is not None

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default", context: str = "devcluster") -> Path:
        """Write a kubeconfig (plain http, dummy bearer token) pointing at this server."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "devcluster", "cluster": {"server": self.url}}],
            "users": [{"name": "devcluster", "user": {"token": self.token}}],
            "contexts": [
                {"name": context, "context": {"cluster": "devcluster", "user": "devcluster", "namespace": namespace}}
            ],
            "current-context": context,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        target.chmod(0o600)
        return target

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        """The cluster's clock: wall time plus whatever `advance()` added."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the cluster's clock forward (skips the `ready_delay` wait in tests)."""
        self._offset += seconds

    @property
    def ready_delay(self) -> float:
        """Seconds between a predictor being scheduled and the InferenceService turning Ready."""
        return self.controller.ready_delay

    @ready_delay.setter
    def ready_delay(self, seconds: float) -> None:
        """Change the delay for rollouts that start from now on."""
        self.controller.ready_delay = seconds

    # ------------------------------------------------------------------ failure injection

    def set_latency(self, seconds: float) -> None:
        """Delay every response by `seconds` (0 to stop), for client timeout tests."""
        self._latency = max(0.0, seconds)

    def fail_next(
        self,
        status_code: int,
        n: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Answer the next `n` matching requests with a `Status` failure of `status_code`.

        `method` (e.g. "PATCH") and `path` (a substring of the URL path) narrow which requests
        fail; 429 and 503 carry `Retry-After: 1`.
        """
        with self._faults_lock:
            self._faults.append(_Fault(status_code, n, method, path, message, reason))

    def disconnect_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """Drop the connection of the next `n` matching requests without answering.

        urllib3 retries idempotent requests on a dropped connection, so pass `n` above its retry count
        (the official client allows 3) to make a GET fail.
        """
        with self._faults_lock:
            self._faults.append(_Fault(None, n, method, path, None, None))

    def compact(self) -> int:
        """Expire every resourceVersion before now (watches resuming from one get 410 Gone); returns it."""
        with self.store.lock:
            return self.store.compact()

    def clear_faults(self) -> None:
        """Forget pending failures and latency."""
        with self._faults_lock:
            self._faults.clear()
        self._latency = 0.0

    def _take_fault(self, req: Request) -> _Fault | None:
        with self._faults_lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(req):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _handle(self, req: Request) -> Response:
        self.requests.append(RecordedRequest(req.method, req.path, dict(req.query), req.content_type))
        if self._latency:
            time.sleep(self._latency)
        fault = self._take_fault(req)
        if fault is not None:
            if fault.status is None:
                return DISCONNECT
            return status_response(errors.generic(fault.status, fault.message, fault.reason))
        return self.api.handle(req)

    # ------------------------------------------------------------------ direct access (no HTTP)

    def add(self, *objects: Mapping[str, Any]) -> None:
        """Store objects as if they were in the seed (nodes, PVCs, ...), replacing same-named ones."""
        load_into(self.store, objects, self.now)
        self.api.reconcile()

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        """A copy of a stored object (after letting the controller catch up), or None."""
        rtype = self._rtype(api_version, kind)
        with self.store.lock:
            self.controller.reconcile()
            obj = self.store.get(rtype, namespace, name)
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored objects of one kind."""
        rtype = self._rtype(api_version, kind)
        with self.store.lock:
            self.controller.reconcile()
            return [copy.deepcopy(o) for o in self.store.items(rtype, namespace)]

    def remove(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        """Delete one object directly; True when it existed."""
        rtype = self._rtype(api_version, kind)
        with self.store.lock:
            removed = self.store.remove(rtype, namespace, name) is not None
            self.controller.reconcile()
        return removed

    @staticmethod
    def _rtype(api_version: str, kind: str) -> ResourceType:
        rtype = lookup_kind(api_version, kind)
        if rtype is None:
            raise KeyError(f"the dev cluster does not serve {api_version}/{kind}")
        return rtype


def run_devcluster(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: SeedSource = None,
    kubeconfig_path: str | Path | None = None,
    ready_delay: float = 3.0,
) -> None:
    """Serve a dev cluster in the foreground until interrupted (Ctrl-C or SIGTERM)."""
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop)
    cluster = DevCluster(seed=seed, ready_delay=ready_delay)
    try:
        url = cluster.start(host, port)
        if kubeconfig_path is not None:
            written = cluster.write_kubeconfig(kubeconfig_path)
            print(f"devcluster: kubeconfig written to {written}", flush=True)
        print(f"devcluster: Kubernetes API on {url} (Ctrl-C to stop)", flush=True)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
