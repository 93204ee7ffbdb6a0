"""moto's server mode on 127.0.0.1: the AWS APIs the tests talk to (S3, IAM, EMR Serverless, SageMaker, ...).

One way to start it for every test: a free port of 127.0.0.1 only, a log file beside the test's files, a wait until
the server answers (a clear failure naming the log when it does not), and a stop that never leaves it running.
The template's dev environment installs moto[server]; a test with its own tool venv passes that venv's server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def default_server() -> Path:
    """moto_server of the template's environment (the dev group's moto[server])."""
    return Path(shutil.which("moto_server") or Path(sys.executable).with_name("moto_server"))


@contextmanager
def running_moto(log_dir: Path, server: Path | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """A moto server on a free port of 127.0.0.1 for the duration of the block; its URL."""
    server = server or default_server()
    if not server.exists():
        raise FileNotFoundError(f"{server} is not installed: `uv sync` installs moto[server] from the dev group")
    port = free_port()
    log_path = log_dir / f"moto-{port}.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2).close()  # 127.0.0.1 only
                    break
                except OSError as error:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"moto_server did not start on {url}: see {log_path}") from error
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
