"""Configuration: defaults, parsing, and one-line errors naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portal.config import ConfigError, Settings, format_duration, listen_address, parse_duration

ROOT = Path(__file__).resolve().parent.parent
BASE = {"MODEL_MANAGER_ENV": "test"}


def test_defaults_follow_the_seed() -> None:
    s = Settings.from_env(BASE)
    assert s.model_catalog_root == Path("/workspace/catalog")
    assert s.model_catalog_models_subdir == "models"
    assert s.catalog_refresh_interval == 30
    assert s.active_namespace == "ai" and s.validation_namespace == "ai"
    assert s.active_inferenceservice_name == "active-llm"
    assert s.weights_storage_path == Path("/mnt/models")
    assert s.weights_pvc_name == "venus-model-storage"
    assert s.weights_install_timeout == 1800
    assert s.datastore_driver == "sqlite"
    assert s.database_uri == "sqlite:////app/state/model-manager.db"
    assert s.huggingface_cache_ttl == 300 and s.vllm_cache_ttl == 600
    assert s.pvc_alert_threshold == 0.85
    assert s.redis_url == "redis://localhost:6379/0"
    assert not s.auth_enabled


def test_empty_string_counts_as_unset() -> None:
    assert Settings.from_env({**BASE, "ACTIVE_NAMESPACE": ""}).active_namespace == "ai"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("72h", 259200), ("45", 45)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_go_duration_format() -> None:
    assert [format_duration(x) for x in (30, 300, 600, 3600)] == ["30s", "5m0s", "10m0s", "1h0m0s"]


def test_postgres_dsn_becomes_psycopg_url() -> None:
    s = Settings.from_env({**BASE, "DATASTORE_DRIVER": "postgres", "DATASTORE_DSN": "postgres://u:pw@db/mm"})
    assert s.database_uri == "postgresql+psycopg://u:pw@db/mm"
    assert "pw" not in str(s.public_dict())


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("DATASTORE_DRIVER", "bolt", "one of sqlite, postgres"),
        ("CATALOG_REFRESH_INTERVAL", "soon", "a duration such as 30s"),
        ("HUGGINGFACE_CACHE_TTL", "5 minutes", "a duration"),
        ("WEIGHTS_INSTALL_TIMEOUT", "-3m", "a duration"),
        ("PVC_ALERT_THRESHOLD", "1.5", "between 0 and 1"),
        ("PVC_ALERT_THRESHOLD", "high", "between 0 and 1"),
        ("ACTIVE_NAMESPACE", "AI_Prod", "a Kubernetes name"),
        ("ACTIVE_INFERENCESERVICE_NAME", "bad name", "a Kubernetes name"),
        ("ACTIVE_INFERENCESERVICE_NAME", "1llm", "starts with a letter"),
        ("REDIS_URL", "localhost:6379", "redis://"),
        ("HF_ENDPOINT", "ftp://mirror", "http://"),
        ("SLACK_WEBHOOK_URL", "not a url", "http://"),
        ("MODEL_CATALOG_MODELS_SUBDIR", "../etc", "a plain name"),
        ("MODEL_MANAGER_DEVCLUSTER", "maybe", "true or false"),
    ],
)
def test_bad_value_names_variable_value_and_expectation(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, name: value})
    message = str(info.value)
    assert message.startswith(f"{name}=")
    assert fragment in message
    assert "\n" not in message


def test_postgres_without_dsn_is_refused() -> None:
    with pytest.raises(ConfigError, match="DATASTORE_DSN"):
        Settings.from_env({**BASE, "DATASTORE_DRIVER": "postgres"})


def test_production_refuses_the_development_secret_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env({})
    assert Settings.from_env({"SECRET_KEY": "a-long-random-production-value"}).environment == "production"


def test_redis_password_is_not_shown() -> None:
    s = Settings.from_env({**BASE, "REDIS_URL": "redis://:hunter2@cache:6379/0", "MODEL_MANAGER_API_TOKEN": "tok"})
    shown = str(s.public_dict())
    assert "hunter2" not in shown and "tok'" not in shown
    assert "hunter2" not in repr(s)


def test_startup_error_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "MODEL_MANAGER_ENV": "test",
        "DATASTORE_DRIVER": "bolt",
        "STATE_PATH": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        "model-manager: configuration error: DATASTORE_DRIVER='bolt' is invalid: expected one of sqlite, postgres"
    ]


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("SLACK_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/secretpart", "http://"),
        ("NOTIFY_WEBHOOK_URLS", "https://ok.example/a,ftp://bad.example/secretpart", "http://"),
        ("CATALOG_REPO_URL", "nope://host/secretpart", "https://"),
    ],
)
def test_bad_webhook_urls_are_reported_without_their_secret(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, name: value})
    message = str(info.value)
    assert message.startswith(f"{name}=<hidden> is invalid") and fragment in message
    assert "secretpart" not in message


def test_catalog_pr_and_notification_settings() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "CATALOG_REPO": "acme/catalog",
            "NOTIFY_WEBHOOK_URLS": " https://a.example/x , https://b.example/y ",
            "NOTIFY_RETRY_BACKOFF": "250ms",
        }
    )
    assert settings.catalog_clone_url == "https://github.com/acme/catalog.git"
    assert settings.catalog_base_branch == ""  # the repository's default branch
    assert settings.notify_webhook_urls == ("https://a.example/x", "https://b.example/y")
    assert settings.notify_retry_backoff == 0.25 and settings.notify_max_attempts == 5
    public = settings.public_dict()
    assert public["notify_webhook_urls"] is True and "a.example" not in str(public)
    with pytest.raises(ConfigError, match="owner/repo"):
        Settings.from_env({**BASE, "CATALOG_REPO": "https://github.com/acme/catalog"})
    with pytest.raises(ConfigError, match="git branch"):
        Settings.from_env({**BASE, "CATALOG_BASE_BRANCH": "a..b"})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "0.0.0.0:8080"),
        ({"PORT": "9000"}, "0.0.0.0:9000"),
        ({"PORT": "9000", "SERVER_PORT": "9100"}, "0.0.0.0:9100"),
        ({"PORT": "9000", "GUNICORN_BIND": "127.0.0.1:7000"}, "127.0.0.1:7000"),
    ],
)
def test_listen_address_is_port_with_documented_overrides(env: dict[str, str], expected: str) -> None:
    assert listen_address(env) == expected


@pytest.mark.parametrize("name", ["PORT", "SERVER_PORT"])
def test_bad_port_names_the_variable(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}='99999' is invalid: .*between 1 and 65535"):
        listen_address({name: "99999"})
