"""math-verify off the main thread runs in a worker process: one that overruns its limit is killed and replaced."""

import time
from concurrent.futures import ThreadPoolExecutor

from delegate.scoring import bounded


def in_a_thread(gold: str, predicted: str) -> bool:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(bounded.verify_latex, gold, predicted).result()


def test_a_worker_past_its_limit_is_killed_and_the_next_check_gets_a_new_one(monkeypatch):
    assert in_a_thread(r"\frac{1}{2}", "0.5")  # the worker is up
    first = bounded._WORKER._process
    monkeypatch.setattr(bounded, "WORKER_LIMIT_S", 0.5)
    started_s = time.perf_counter()
    assert in_a_thread("18", "9^{9^{9^{9}}}") is False
    assert time.perf_counter() - started_s < 3
    assert first.poll() is not None  # killed
    assert in_a_thread(r"3\sqrt{13}", r"\sqrt{117}")
    assert bounded._WORKER._process not in (None, first)
