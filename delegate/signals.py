"""SIGTERM handled like Ctrl-C, so a job stopped by `kill`, a scheduler or a container runtime ends resumable."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _interrupt(signum, frame) -> None:
    # Hand it to SIGINT's handler: inside asyncio.run that cancels the running problems cleanly, elsewhere it raises
    # KeyboardInterrupt. Either way the job then ends as on Ctrl-C: the MLflow run KILLED, artifacts logged.
    signal.raise_signal(signal.SIGINT)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM acts as SIGINT (Ctrl-C); the previous handler comes back after.

    Only the main thread may set signal handlers: elsewhere (a job run from a worker thread) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
