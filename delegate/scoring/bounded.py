"""math-verify's equivalence check, bounded in time in any thread.

math-verify bounds a runaway comparison (`\\boxed{9^{9^{9^{9}}}}`) with `signal.alarm`, which only the main thread
may use; that is where a job scores (its event loop). Any other thread (a caller's worker pool) sends the check to
one worker process (`python -m delegate.scoring.bounded`, a plain subprocess, so no caller needs a `__main__` guard),
where math-verify runs with the same bounds in that process's main thread. A worker that does not answer within
`WORKER_LIMIT_S` is killed (the next check starts another) and the answer counts as no match. Same inputs give the
same verdict in both places.
"""

import atexit
import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

# math-verify's own default, for each parse and each comparison (one check may make several of each).
TIMEOUT_S = 5
# How long another thread waits on the worker for one check (parsing two answers, comparing up to four pairs)
# before it kills it; and for the worker to start (importing sympy), which is not counted in the first.
WORKER_LIMIT_S = 8 * TIMEOUT_S
WORKER_START_LIMIT_S = 120
_READY = "ready"


def verify_latex(gold: str, predicted: str) -> bool:
    """Whether `predicted` equals `gold`, both LaTeX without `$` delimiters, by math-verify's parse and verify.

    Never raises and never runs much past math-verify's bounds: an answer it cannot parse, or one that runs out of
    time, is not a match.
    """
    if threading.current_thread() is threading.main_thread():
        return _verify(gold, predicted)
    return _WORKER.verify(gold, predicted)


def _verify(gold: str, predicted: str) -> bool:
    from math_verify import parse, verify

    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=TIMEOUT_S)
        predicted_parsed = parse(f"${predicted}$", parsing_timeout=TIMEOUT_S)
        return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=TIMEOUT_S))
    except Exception:  # math_verify raises on odd LaTeX; an unparseable answer is simply not a match
        return False


class _Worker:
    """One worker process, started on first use; checks from other threads take turns on it, one JSON line each
    way: `[gold, predicted]` in, `true` or `false` out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def verify(self, gold: str, predicted: str) -> bool:
        with self._lock:
            process = self._process or self._start()
            if process is None:
                return False
            process.stdin.write(json.dumps([gold, predicted]) + "\n")
            process.stdin.flush()
            line = self._read_line(process, WORKER_LIMIT_S)
            return line == "true"

    def _start(self) -> "subprocess.Popen[str] | None":
        # The worker imports this package the way this process did, installed or not.
        package_root = str(Path(__file__).resolve().parents[2])
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "delegate.scoring.bounded"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
        )
        return self._process if self._read_line(self._process, WORKER_START_LIMIT_S) == _READY else None

    def _read_line(self, process: "subprocess.Popen[str]", limit_s: float) -> str | None:
        """The worker's next line, or None (and the worker stopped) when it gives none within `limit_s`."""
        if select.select([process.stdout], [], [], limit_s)[0]:
            line = process.stdout.readline()
            if line:
                return line.strip()
        self.stop()
        return None

    def stop(self) -> None:
        """Kill the worker, if one runs (the next check starts another)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


_WORKER = _Worker()
atexit.register(_WORKER.stop)


def _serve() -> None:
    """The worker's loop: one check per line of stdin, each answered at once on stdout."""
    import math_verify  # noqa: F401 - loaded before the first check is timed

    print(_READY, flush=True)
    for line in sys.stdin:
        gold, predicted = json.loads(line)
        print(json.dumps(_verify(gold, predicted)), flush=True)


if __name__ == "__main__":
    _serve()
