"""A real `mlflow server` on a free loopback port, for tests of the tracking server and of the MLflow UI."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MLFLOW = Path(sys.executable).with_name("mlflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def mlflow_server(
    backend_store_uri: str, log_path: Path, *artifact_options: str
) -> Iterator[tuple[str, Callable[..., None]]]:
    """Start `mlflow server` over the store (with `artifact_options`, e.g. `--artifacts-destination DIR`); yields its
    URL and a wait-until-healthy function, so a caller can overlap the server's slow start (10-25 s) with its own
    work. Stopped with its web workers on exit."""
    url = f"http://127.0.0.1:{free_port()}"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                str(MLFLOW),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                url.rsplit(":", 1)[1],
                "--workers",
                "1",
                "--backend-store-uri",
                backend_store_uri,
                *artifact_options,
            ],
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # No telemetry, and no background job runner (MLflow's GenAI jobs): one process less to start.
            env=os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )

    def wait_healthy(timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up on {url}; its log: {log_path.read_text()[-3000:]}")
            time.sleep(0.25)

    try:
        yield url, wait_healthy
    finally:
        # Its own session: the workers it spawns go with it.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
