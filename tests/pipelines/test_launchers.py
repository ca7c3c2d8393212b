"""Sweeps through Hydra's joblib and submitit_local launchers: jobs run at once, each files one run in one experiment."""

import threading

import pandas as pd
import pytest

from delegate.testing.scripted_server import Reply
from tests.support.cli import mlflow_runs, run_eval

SEEDS = (1, 2, 3, 4)
SAMPLES = 2
# Every problem of every job must be waiting for its reply at one moment; serial jobs would wait this long in vain.
ALL_IN_FLIGHT_TIMEOUT_S = 90

LAUNCHERS = {
    # joblib's default n_jobs is the number of CPUs: ask for one worker per job.
    "joblib": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={len(SEEDS)}"],
    # Each job is a process of its own, started by submitit as SLURM would start it (submitit_slurm).
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
}


class AllInFlight:
    """A responder that holds every reply until `expected` requests wait at once: only parallel jobs get through.

    A job has at most `samples` calls in flight (`concurrency` is higher), so `jobs * samples` requests waiting
    together means every job was running at that moment. After `timeout_s` the replies go out anyway, so a serial
    sweep fails the test's check instead of hanging.
    """

    def __init__(self, expected: int, timeout_s: float):
        self.expected = expected
        self.timeout_s = timeout_s
        self.timed_out = False
        self._arrived = 0
        self._lock = threading.Lock()
        self._all_arrived = threading.Event()

    def __call__(self, request: dict) -> Reply:
        with self._lock:
            self._arrived += 1
            if self._arrived >= self.expected:
                self._all_arrived.set()
        if not self._all_arrived.wait(self.timeout_s):
            self.timed_out = True
        return Reply(content="So the total is \\boxed{7}.", prompt_tokens=40, completion_tokens=8)


# Slow: four job processes each import the whole stack (tens of seconds on 2 cores).
@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_sweep_runs_its_jobs_in_parallel_into_one_experiment(launcher, tmp_path, scripted_server):
    gate = AllInFlight(expected=len(SEEDS) * SAMPLES, timeout_s=ALL_IN_FLIGHT_TIMEOUT_S)
    scripted_server.set_responder(gate)

    done = run_eval(
        tmp_path,
        "-m",
        "experiment=local",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        f"seed={','.join(map(str, SEEDS))}",
        f"samples={SAMPLES}",
        *LAUNCHERS[launcher],
        timeout_s=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not gate.timed_out, "the jobs did not all have their problems in flight at once"
    assert len(scripted_server.requests) == len(SEEDS) * SAMPLES

    client, logged = mlflow_runs(tmp_path)
    assert [e.name for e in client.search_experiments() if e.name != "Default"] == ["delegate-gsm8k"]
    # Beside the jobs' runs, the sweep's report (delegate.sweep) files one run of its own.
    runs = [r for r in logged if "delegate.report" not in r.data.tags]
    assert len(runs) == len(SEEDS)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["seed"] for r in runs) == [str(s) for s in SEEDS]
    assert {r.data.metrics["n_samples"] for r in runs} == {SAMPLES}
    # The runs' own clocks say the same: one moment when all four were open.
    assert max(r.info.start_time for r in runs) < min(r.info.end_time for r in runs)

    # Each job wrote its folder under the one sweep folder, and the sweep's table has a row per job.
    [sweep_dir] = (tmp_path / "outputs" / "multirun").glob("*/*")
    assert sorted(p.parent.name for p in sweep_dir.glob("*/summary.json")) == [f"{n}-llm" for n in range(len(SEEDS))]
    table = pd.read_csv(sweep_dir / "sweep_summary.csv")
    assert sorted(table["run_id"]) == sorted(r.info.run_id for r in runs)
    assert "Sweep summary" in done.stdout
