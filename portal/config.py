"""Settings: every environment variable the portal reads, typed and validated at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEV_SECRET_KEY = "dev-insecure-change-me"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Exactly what parse_duration accepts (documented in the OpenAPI document where a duration is a parameter).
DURATION_PATTERN = r"^(?:\d+(?:\.\d+)?|(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$"
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


class ConfigError(ValueError):
    """A configuration value is wrong; the message is one line naming the variable."""


def parse_duration(text: str) -> float:
    """Parse a Go-style duration (`30s`, `5m`, `1h30m`, `250ms`) or plain seconds into seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            raise ValueError(text)
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(text)
    return total


def format_duration(seconds: float) -> str:
    """Format seconds the way Go prints a duration (`30s`, `5m0s`, `1h0m0s`)."""
    if seconds <= 0:
        return ""
    whole = int(seconds)
    if whole != seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def redact_url(url: str) -> str:
    """Drop any password from a URL/DSN so it can be shown or logged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable>"
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Settings:
    """Typed configuration; build it with `Settings.from_env()`."""

    model_catalog_root: Path = Path("/workspace/catalog")
    model_catalog_models_subdir: str = "models"
    model_catalog_schema_path: Path | None = None
    catalog_refresh_interval: float = 30.0
    catalog_repo: str = ""
    catalog_base_branch: str = ""
    catalog_repo_url: str = field(default="", repr=False)
    git_author_name: str = ""
    git_author_email: str = ""
    active_namespace: str = "ai"
    validation_namespace: str = "ai"
    active_inferenceservice_name: str = "active-llm"
    weights_storage_path: Path = Path("/mnt/models")
    weights_pvc_name: str = "venus-model-storage"
    inference_model_root: str = "/mnt/models"
    weights_install_timeout: float = 1800.0
    weights_volume_limit_bytes: int | None = None
    weights_require_sha256: bool = False
    weights_download_retries: int = 5
    weights_retry_backoff: float = 1.0
    weights_retry_backoff_max: float = 60.0
    staging_max_age: float = 7 * 86400.0
    weights_usage_refresh: float = 300.0
    job_stale_after: float = 30.0
    gpu_profile_path: Path | None = None
    state_path: Path = Path("/app/state")
    datastore_driver: str = "sqlite"
    datastore_dsn: str = field(default="", repr=False)
    database_pvc_name: str = "model-manager-db"
    huggingface_api_token: str = field(default="", repr=False)
    huggingface_cache_ttl: float = 300.0
    github_token: str = field(default="", repr=False)
    vllm_cache_ttl: float = 600.0
    pvc_alert_threshold: float = 0.85
    slack_webhook_url: str = field(default="", repr=False)
    model_manager_api_token: str = field(default="", repr=False)
    redis_url: str = field(default="redis://localhost:6379/0", repr=False)
    secret_key: str = field(default=DEV_SECRET_KEY, repr=False)
    hf_endpoint: str = "https://huggingface.co"
    github_api_url: str = "https://api.github.com"
    auth_proxy_user_header: str = ""
    kubeconfig: str = ""
    kube_timeout: float = 10.0
    devcluster: bool = False
    environment: str = "production"
    queue_name: str = "model-manager"
    vllm_version: str = ""
    notify_webhook_urls: tuple[str, ...] = field(default=(), repr=False)
    notify_webhook_secret: str = field(default="", repr=False)
    notify_max_attempts: int = 5
    notify_retry_backoff: float = 2.0
    activation_ready_timeout: float = 600.0
    managed_namespaces: tuple[str, ...] = ()
    cluster_watch_lock_ttl: float = 15.0
    cluster_watch_timeout: float = 300.0

    @property
    def catalog_clone_url(self) -> str:
        """Where the catalog PR work clone fetches from and pushes to."""
        return self.catalog_repo_url or (f"https://github.com/{self.catalog_repo}.git" if self.catalog_repo else "")

    @property
    def database_uri(self) -> str:
        """The SQLAlchemy URL for the configured driver."""
        if self.datastore_driver == "postgres":
            dsn = self.datastore_dsn
            if dsn.startswith("postgres://"):
                dsn = "postgresql://" + dsn[len("postgres://") :]
            if dsn.startswith("postgresql://"):
                dsn = "postgresql+psycopg://" + dsn[len("postgresql://") :]
            return dsn
        if self.datastore_dsn.startswith("sqlite:"):
            return self.datastore_dsn
        path = Path(self.datastore_dsn) if self.datastore_dsn else self.state_path / "model-manager.db"
        return f"sqlite:///{path}"

    @property
    def auth_enabled(self) -> bool:
        """True when mutations need the API token."""
        return bool(self.model_manager_api_token)

    @property
    def catalog_models_dir(self) -> Path:
        """The directory that holds the catalog's `*.json` entries."""
        return self.model_catalog_root / self.model_catalog_models_subdir

    def public_dict(self) -> dict[str, Any]:
        """Settings without secrets, for display."""
        data = asdict(self)
        for name in (
            "huggingface_api_token",
            "github_token",
            "slack_webhook_url",
            "notify_webhook_urls",
            "notify_webhook_secret",
            "catalog_repo_url",
            "model_manager_api_token",
            "secret_key",
        ):
            data[name] = bool(data[name])
        data["redis_url"] = redact_url(self.redis_url)
        data["datastore_dsn"] = redact_url(self.datastore_dsn) if self.datastore_dsn else ""
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every variable; raise ConfigError with one line on the first bad one."""
        source = os.environ if env is None else env
        reader = _Reader(source)
        values: dict[str, Any] = {
            "model_catalog_root": reader.path("MODEL_CATALOG_ROOT", Path("/workspace/catalog")),
            "model_catalog_models_subdir": reader.name("MODEL_CATALOG_MODELS_SUBDIR", "models"),
            "model_catalog_schema_path": reader.optional_path("MODEL_CATALOG_SCHEMA_PATH"),
            "catalog_refresh_interval": reader.duration("CATALOG_REFRESH_INTERVAL", 30.0),
            "catalog_repo": reader.repo("CATALOG_REPO"),
            "catalog_base_branch": reader.branch("CATALOG_BASE_BRANCH"),
            "catalog_repo_url": reader.secret_url("CATALOG_REPO_URL", schemes=("http", "https", "file", "ssh")),
            "git_author_name": reader.text("GIT_AUTHOR_NAME", ""),
            "git_author_email": reader.text("GIT_AUTHOR_EMAIL", ""),
            "active_namespace": reader.dns_label("ACTIVE_NAMESPACE", "ai"),
            "active_inferenceservice_name": reader.dns1035_label("ACTIVE_INFERENCESERVICE_NAME", "active-llm"),
            "weights_storage_path": reader.path("WEIGHTS_STORAGE_PATH", Path("/mnt/models")),
            "weights_pvc_name": reader.text("WEIGHTS_PVC_NAME", "venus-model-storage"),
            "inference_model_root": reader.text("INFERENCE_MODEL_ROOT", "/mnt/models"),
            "weights_install_timeout": reader.duration("WEIGHTS_INSTALL_TIMEOUT", 1800.0),
            "weights_volume_limit_bytes": reader.optional_integer("WEIGHTS_VOLUME_LIMIT_BYTES", minimum=0),
            "weights_require_sha256": reader.boolean("WEIGHTS_REQUIRE_SHA256", False),
            "weights_download_retries": reader.integer("WEIGHTS_DOWNLOAD_RETRIES", 5, minimum=0, maximum=100),
            "weights_retry_backoff": reader.duration("WEIGHTS_RETRY_BACKOFF", 1.0),
            "weights_retry_backoff_max": reader.duration("WEIGHTS_RETRY_BACKOFF_MAX", 60.0),
            "staging_max_age": reader.duration("STAGING_MAX_AGE", 7 * 86400.0),
            "weights_usage_refresh": reader.duration("WEIGHTS_USAGE_REFRESH", 300.0),
            "job_stale_after": reader.duration("JOB_STALE_AFTER", 30.0),
            "gpu_profile_path": reader.optional_path("GPU_PROFILE_PATH"),
            "state_path": reader.path("STATE_PATH", Path("/app/state")),
            "datastore_driver": reader.choice("DATASTORE_DRIVER", "sqlite", ("sqlite", "postgres")),
            "datastore_dsn": reader.text("DATASTORE_DSN", ""),
            "database_pvc_name": reader.text("DATABASE_PVC_NAME", "model-manager-db"),
            "huggingface_api_token": reader.text("HUGGINGFACE_API_TOKEN", ""),
            "huggingface_cache_ttl": reader.duration("HUGGINGFACE_CACHE_TTL", 300.0),
            "github_token": reader.text("GITHUB_TOKEN", ""),
            "vllm_cache_ttl": reader.duration("VLLM_CACHE_TTL", 600.0),
            "pvc_alert_threshold": reader.fraction("PVC_ALERT_THRESHOLD", 0.85),
            "slack_webhook_url": reader.secret_url("SLACK_WEBHOOK_URL"),
            "model_manager_api_token": reader.text("MODEL_MANAGER_API_TOKEN", ""),
            "redis_url": reader.url("REDIS_URL", "redis://localhost:6379/0", schemes=("redis", "rediss", "unix")),
            "secret_key": reader.text("SECRET_KEY", DEV_SECRET_KEY),
            "hf_endpoint": reader.url("HF_ENDPOINT", "https://huggingface.co").rstrip("/"),
            "github_api_url": reader.url("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            "auth_proxy_user_header": reader.text("AUTH_PROXY_USER_HEADER", ""),
            "kubeconfig": reader.text("KUBECONFIG", ""),
            "kube_timeout": reader.duration("KUBE_TIMEOUT", 10.0),
            "devcluster": reader.boolean("MODEL_MANAGER_DEVCLUSTER", False),
            "environment": reader.choice("MODEL_MANAGER_ENV", "production", ("production", "development", "test")),
            "queue_name": reader.name("RQ_QUEUE", "model-manager"),
            "vllm_version": reader.vllm_version("VLLM_VERSION"),
            "notify_webhook_urls": reader.secret_urls("NOTIFY_WEBHOOK_URLS"),
            "notify_webhook_secret": reader.text("NOTIFY_WEBHOOK_SECRET", ""),
            "notify_max_attempts": reader.integer("NOTIFY_MAX_ATTEMPTS", 5, minimum=1, maximum=20),
            "notify_retry_backoff": reader.duration("NOTIFY_RETRY_BACKOFF", 2.0),
            "activation_ready_timeout": reader.duration("ACTIVATION_READY_TIMEOUT", 600.0),
            "managed_namespaces": reader.dns_label_list("MANAGED_NAMESPACES"),
            "cluster_watch_lock_ttl": reader.duration("CLUSTER_WATCH_LOCK_TTL", 15.0),
            "cluster_watch_timeout": reader.duration("CLUSTER_WATCH_TIMEOUT", 300.0),
        }
        values["validation_namespace"] = reader.dns_label("VALIDATION_NAMESPACE", values["active_namespace"])
        if values["datastore_driver"] == "postgres" and not values["datastore_dsn"]:
            raise ConfigError("DATASTORE_DSN: required when DATASTORE_DRIVER=postgres (e.g. postgresql://user@host/db)")
        if values["environment"] == "production" and values["secret_key"] == DEV_SECRET_KEY:
            raise ConfigError(
                "SECRET_KEY: the development key is refused in production; set a long random value "
                "(or MODEL_MANAGER_ENV=development)"
            )
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and overrides)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(changes)
        return Settings(**data)


def listen_address(env: Mapping[str, str] | None = None) -> str:
    """Where gunicorn listens: `GUNICORN_BIND` as given, else 0.0.0.0 on `PORT` (default 8080).

    `SERVER_PORT`, the original service's name, overrides `PORT` so its deployments keep working.
    """
    reader = _Reader(os.environ if env is None else env)
    bind = reader.text("GUNICORN_BIND", "")
    if bind:
        return bind
    port = reader.optional_integer("SERVER_PORT", minimum=1, maximum=65535)
    if port is None:
        port = reader.integer("PORT", 8080, minimum=1, maximum=65535)
    return f"0.0.0.0:{port}"


class _Reader:
    """Reads typed values; empty strings count as unset, like the original service."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def vllm_version(self, name: str) -> str:
        """A vLLM release such as ``0.19.0`` or ``v0.10.1.1`` (the leading v dropped); empty when unset."""
        value = self.raw(name)
        if value is None:
            return ""
        if re.fullmatch(r"v?\d+\.\d+(\.\d+){0,2}([.+-]?[0-9A-Za-z.]+)?", value) is None:
            raise self.fail(name, value, "a vLLM release such as 0.19.0")
        return value.removeprefix("v")

    def fail(self, name: str, value: str, expected: str) -> ConfigError:
        shown = value if len(value) <= 60 else value[:57] + "..."
        return ConfigError(f"{name}={shown!r} is invalid: expected {expected}")

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def name(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not re.fullmatch(r"[A-Za-z0-9._-]+", value) or value in {".", ".."}:
            raise self.fail(name, value, "a plain name of letters, digits, '.', '_' or '-'")
        return value

    def dns_label(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
            raise self.fail(name, value, "a Kubernetes name (lowercase letters, digits and '-', max 63)")
        return value

    def dns1035_label(self, name: str, default: str) -> str:
        # KServe names services after the InferenceService, so it must also start with a letter.
        value = self.dns_label(name, default)
        if not value[0].isalpha():
            raise self.fail(name, value, "a name that starts with a letter (KServe refuses others)")
        return value

    def dns_label_list(self, name: str) -> tuple[str, ...]:
        """A comma-separated list of Kubernetes names (empty when unset)."""
        found: list[str] = []
        for part in (self.text(name, "") or "").split(","):
            value = part.strip()
            if not value:
                continue
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
                raise self.fail(name, value, "comma-separated Kubernetes names (lowercase letters, digits and '-')")
            if value not in found:
                found.append(value)
        return tuple(found)

    def path(self, name: str, default: Path) -> Path:
        value = self.raw(name)
        return default if value is None else Path(value).expanduser()

    def optional_path(self, name: str) -> Path | None:
        value = self.raw(name)
        return None if value is None else Path(value).expanduser()

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        return self._int(name, value, minimum, maximum)

    def optional_integer(self, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self.raw(name)
        return None if value is None else self._int(name, value, minimum, maximum)

    def _int(self, name: str, value: str, minimum: int | None, maximum: int | None) -> int:
        try:
            number = int(value)
        except ValueError:
            raise self.fail(name, value, "a whole number") from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise self.fail(name, value, f"a whole number between {minimum} and {maximum}")
        return number

    def duration(self, name: str, default: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise self.fail(name, value, "a duration such as 30s, 5m or 1h30m") from None
        if seconds > 10 * 365 * 86400:
            raise self.fail(name, value, "a duration under ten years")
        return seconds

    def fraction(self, name: str, default: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise self.fail(name, value, "a number between 0 and 1") from None
        if not 0 < number <= 1:
            raise self.fail(name, value, "a number between 0 and 1")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise self.fail(name, value, "true or false")

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in options:
            raise self.fail(name, value, "one of " + ", ".join(options))
        return value

    def url(self, name: str, default: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.raw(name)
        if value is None:
            return default
        parts = urlsplit(value)
        if parts.scheme not in schemes or (parts.scheme != "unix" and not parts.netloc):
            raise ConfigError(
                f"{name}={redact_url(value)!r} is invalid: expected a URL starting with "
                + " or ".join(f"{s}://" for s in schemes)
            )
        return value

    def secret_url(self, name: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.raw(name)
        return "" if value is None else self._secret_url(name, value, schemes)

    def secret_urls(self, name: str) -> tuple[str, ...]:
        value = self.raw(name) or ""
        return tuple(
            self._secret_url(name, part.strip(), ("http", "https")) for part in value.split(",") if part.strip()
        )

    def _secret_url(self, name: str, value: str, schemes: tuple[str, ...]) -> str:
        # Webhook URLs carry their secret in the path: a bad value is reported without echoing it.
        parts = urlsplit(value)
        if parts.scheme not in schemes or (parts.scheme != "file" and not parts.netloc):
            raise ConfigError(
                f"{name}=<hidden> is invalid: expected a URL starting with " + " or ".join(f"{s}://" for s in schemes)
            )
        return value

    def repo(self, name: str) -> str:
        value = self.text(name, "")
        if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+", value):
            raise self.fail(name, value, "owner/repo (as on GitHub)")
        return value

    def branch(self, name: str) -> str:
        value = self.text(name, "")
        if value and (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}", value) or ".." in value):
            raise self.fail(name, value, "a git branch name")
        return value
