"""Who may call the prediction routes: an API key checked by the service, or a gateway in front of it.

AUTH_MODE (docs/security.md, "Authentication"):
- `api_key` (the default): /predict, /invocations and /version need `Authorization: Bearer <key>` with a key
  of API_KEYS (comma-separated) or API_KEYS_FILE (one per line: a mounted secret). Several keys may be valid
  at once, so a key is rotated by adding the new one, moving the callers, then removing the old one.
- `gateway`: the platform authenticates every request before it reaches the container (IAM-invoked Cloud Run,
  SageMaker / Vertex AI / Azure ML endpoints, a load balancer with OIDC); the service checks nothing itself.
- `none`: public, a deliberate choice for a workstation (`make serve` on 127.0.0.1); logged as a warning.

The service keeps only the SHA-256 digest of each key and compares digests in constant time, against every
key, so neither the keys nor the timing of a comparison says anything about them. /health, /ready and /ping
(the probes) never need a key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

AUTH_MODES = ("api_key", "gateway", "none")
SECURITY_SCHEME = "apiKey"  # its name in the OpenAPI document
MIN_KEY_LENGTH = 32  # `python -c "import secrets; print(secrets.token_urlsafe(32))"` gives 43 characters
BEARER = "bearer "
# RFC 6750: the challenge of a 401, so a client knows which credentials to send
CHALLENGE = 'Bearer realm="prediction"'


class AuthConfigError(ValueError):
    """AUTH_MODE, API_KEYS or API_KEYS_FILE hold a value the service cannot use."""


@dataclass(frozen=True, repr=False)
class ApiKeys:
    """The SHA-256 digests of the keys that may call the service (never the keys themselves)."""

    digests: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, keys: list[str]) -> ApiKeys:
        for key in keys:
            if len(key) < MIN_KEY_LENGTH:
                raise AuthConfigError(
                    f"an API key has {len(key)} characters, fewer than {MIN_KEY_LENGTH}: generate one with "
                    '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
                )
        return cls(tuple(_digest(key) for key in keys))

    def accepts(self, authorization: str | None) -> bool:
        """Whether an Authorization header carries one of the keys (every key compared, in constant time)."""
        if authorization is None or authorization[: len(BEARER)].lower() != BEARER:
            return False
        presented = _digest(authorization[len(BEARER) :].strip())
        accepted = False
        for digest in self.digests:
            accepted |= hmac.compare_digest(presented, digest)
        return accepted

    def __repr__(self) -> str:
        return f"ApiKeys({len(self.digests)} keys)"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def auth_mode(env: Mapping[str, str], default: str) -> str:
    mode = env.get("AUTH_MODE", default).strip().lower() or default
    if mode not in AUTH_MODES:
        raise AuthConfigError(f"AUTH_MODE must be one of {', '.join(AUTH_MODES)}, got {mode!r}")
    return mode


def api_keys_from_env(env: Mapping[str, str]) -> ApiKeys:
    """The keys in API_KEYS (comma-separated) and in the file API_KEYS_FILE (one a line, # comments)."""
    keys = [key.strip() for key in env.get("API_KEYS", "").split(",") if key.strip()]
    path = env.get("API_KEYS_FILE", "").strip()
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise AuthConfigError(f"API_KEYS_FILE={path} cannot be read: {error.strerror}") from None
        keys += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return ApiKeys.of(keys)


def log_auth_mode(mode: str, keys: ApiKeys) -> None:
    """Say at start-up who may call the service; a public service is a warning."""
    if mode == "none":
        logger.warning("AUTH_MODE=none: /predict, /invocations and /version are public, without any key")
    elif mode == "gateway":
        logger.info("AUTH_MODE=gateway: the platform in front of the service authenticates every caller")
    elif not keys.digests:
        logger.error("AUTH_MODE=api_key and no key in API_KEYS or API_KEYS_FILE: every /predict answers 401")
    else:
        logger.info("AUTH_MODE=api_key", extra={"api_keys": len(keys.digests)})
