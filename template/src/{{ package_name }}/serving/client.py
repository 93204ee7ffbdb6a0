"""Call a running service: `python -m <package>.serving.client [--url URL] [--check PATH]`.

By default it posts the example record (the reference record of the model in $MODEL_DIR, else models/champion)
to /predict and prints the response (`make predict`), with `Authorization: Bearer $API_KEY` when API_KEY is
set (a service with AUTH_MODE=api_key needs it). With
`--check /health` it only exits 0 when GET /health answers 200 (the container's HEALTHCHECK). Stdlib only,
so it starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from ..scoring.example import example_record

TIMEOUT_SECONDS = 5.0


def default_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def request(url: str, payload: dict[str, Any] | None = None) -> tuple[int, str]:
    """(status, body) of a GET, or of a JSON POST when a payload is given."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the URL must start with http:// or https://, got {url!r}")
    data = None if payload is None else json.dumps(payload).encode()
    headers = {} if payload is None else {"Content-Type": "application/json"}
    api_key = os.environ.get("API_KEY", "").strip()
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    http_request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(http_request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - same
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__)
    parser.add_argument("--url", default=default_url(), help="base URL of the service (default: %(default)s)")
    parser.add_argument(
        "--check", metavar="PATH", help="only GET PATH (e.g. /health); exit 0 when it answers 200"
    )
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    try:
        if args.check is not None:
            status, _ = request(f"{base}/{args.check.lstrip('/')}")
            return 0 if status == 200 else 1
        status, body = request(f"{base}/predict", example_record())
    except (OSError, ValueError) as error:
        print(f"cannot reach {base}: {error}", file=sys.stderr)
        return 1
    print(body)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
