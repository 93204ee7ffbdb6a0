"""Service configuration, read once from environment variables (twelve-factor style)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .auth import ApiKeys, AuthConfigError, api_keys_from_env, auth_mode

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    web_concurrency: int = 1
    log_level: str = "info"
    model_dir: Path = Path("models/champion")
    max_batch_size: int = 100
    max_request_bytes: int = 1_048_576
    inference_log_dir: Path = Path("data/inference")
    inference_log_sample_rate: float = 0.1
    # Where serving/log_shipper.py uploads the closed log files ("": they stay in inference_log_dir).
    inference_log_uri: str = ""
    inference_log_rotate_seconds: int = 300
    inference_log_rotate_bytes: int = 8 * 1024 * 1024
    inference_log_ship_seconds: int = 30
    # Closed files waiting for upload beyond this: the oldest are dropped (and counted).
    inference_log_max_bytes: int = 512 * 1024 * 1024
    app_env: str = "local"
    # api_key: /predict, /invocations and /version need a key of api_keys (serving/auth.py)
    auth_mode: str = "api_key"
    api_keys: ApiKeys = field(default_factory=ApiKeys)
    # /metrics is served on its own port, for the scraper only: the load balancer routes to `port`.
    metrics_port: int = 9100
    # Connections (and requests) a worker holds at once; beyond it uvicorn answers 503 straight away.
    limit_concurrency: int = 100
    # /predict by id (feature_store feast): the Feast configuration whose online store is read, and the age of
    # its last materialisation beyond which lookups answer 503 (0: not checked)
    feature_store_yaml: Path | None = None
    feature_max_age_seconds: int = 0

    @property
    def production(self) -> bool:
        """APP_ENV=production (the image's default) hides the docs: /docs, /redoc and /openapi.json."""
        return self.app_env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        log_level = env.get("LOG_LEVEL", defaults.log_level).strip().lower()
        if log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        return cls(
            host=env.get("HOST", defaults.host),
            port=_integer(env, "PORT", defaults.port, minimum=1, maximum=65_535),
            web_concurrency=_integer(env, "WEB_CONCURRENCY", defaults.web_concurrency, minimum=1, maximum=64),
            log_level=log_level,
            model_dir=Path(env.get("MODEL_DIR", str(defaults.model_dir))),
            max_batch_size=_integer(
                env, "MAX_BATCH_SIZE", defaults.max_batch_size, minimum=1, maximum=100_000
            ),
            max_request_bytes=_integer(
                env, "MAX_REQUEST_BYTES", defaults.max_request_bytes, minimum=1_024, maximum=1 << 30
            ),
            inference_log_dir=Path(env.get("INFERENCE_LOG_DIR", str(defaults.inference_log_dir))),
            inference_log_sample_rate=_fraction(
                env, "INFERENCE_LOG_SAMPLE_RATE", defaults.inference_log_sample_rate
            ),
            inference_log_uri=env.get("INFERENCE_LOG_URI", defaults.inference_log_uri).strip(),
            inference_log_rotate_seconds=_integer(
                env,
                "INFERENCE_LOG_ROTATE_SECONDS",
                defaults.inference_log_rotate_seconds,
                minimum=1,
                maximum=86_400,
            ),
            inference_log_rotate_bytes=_integer(
                env,
                "INFERENCE_LOG_ROTATE_BYTES",
                defaults.inference_log_rotate_bytes,
                minimum=1_024,
                maximum=1 << 30,
            ),
            inference_log_ship_seconds=_integer(
                env,
                "INFERENCE_LOG_SHIP_SECONDS",
                defaults.inference_log_ship_seconds,
                minimum=1,
                maximum=3_600,
            ),
            inference_log_max_bytes=_integer(
                env,
                "INFERENCE_LOG_MAX_BYTES",
                defaults.inference_log_max_bytes,
                minimum=1 << 20,
                maximum=1 << 40,
            ),
            app_env=env.get("APP_ENV", defaults.app_env).strip().lower(),
            metrics_port=_integer(env, "METRICS_PORT", defaults.metrics_port, minimum=1, maximum=65_535),
            limit_concurrency=_integer(
                env, "LIMIT_CONCURRENCY", defaults.limit_concurrency, minimum=1, maximum=100_000
            ),
            feature_store_yaml=Path(env["FEATURE_STORE_YAML"]) if env.get("FEATURE_STORE_YAML") else None,
            feature_max_age_seconds=_integer(
                env, "FEATURE_MAX_AGE_SECONDS", defaults.feature_max_age_seconds, minimum=0, maximum=10**9
            ),
            **_auth(env, defaults.auth_mode),
        )


def _auth(env: Mapping[str, str], default_mode: str) -> dict[str, Any]:
    try:
        mode = auth_mode(env, default_mode)
        keys = api_keys_from_env(env)
    except AuthConfigError as error:
        raise SettingsError(str(error)) from None
    return {"auth_mode": mode, "api_keys": keys}


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{name} must be between 0 and 1, got {value}")
    return value
