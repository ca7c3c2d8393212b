"""What `delegate-eval` shows a person: its --help, one line for a config mistake, a quiet log, runs named by model."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from delegate.cli import job_configs, quiet_libraries
from delegate.compose import compose_config
from delegate.testing.scripted_server import Reply
from pipelines.evaluate import main
from tests.support.cli import DELEGATE_EVAL

QWEN = "Qwen/Qwen2.5-7B-Instruct"


@pytest.fixture
def launch_dir(tmp_path, monkeypatch):
    """An empty folder to launch from, with the store defaulting to <it>/mlflow.db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def stopped_with(arguments: list[str], capsys) -> tuple[int, str]:
    """Run delegate-eval in-process, expecting it to stop: (exit status, stderr)."""
    with pytest.raises(SystemExit) as stop:
        main(arguments)
    return stop.value.code, capsys.readouterr().err


def test_help_describes_the_tool_groups_options_keys_and_examples(launch_dir, capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("delegate-eval: run one evaluation job")
    # Every group with its options from conf/, the default marked; never the ConfigStore's schema nodes.
    assert "_schema" not in out
    for group, options in {
        "data": ["gsm8k", "sample"],
        "strategy": ["llm", "router", "slm"],
        "llm": ["gpt-4o", "openai-compatible", "local"],
        "slm": ["qwen2.5-math-1.5b", "openai-compatible", "local"],
        "tracking": ["local", "server"],
        "experiment": ["compare", "compare-local", "local", "reference"],
    }.items():
        assert f"\n  {group}" in out
        assert all(f" {option} " in out for option in options), group
    assert "    * router" not in out and "    * llm " in out
    assert "The LLM reasons and delegates routine sub-questions to the SLM" in out
    assert "llm.* keys (openai):" in out and "max_tokens_param" in out
    # The main keys with their defaults and meaning, and examples.
    assert "samples=null" in out and "null = every problem of the split" in out
    assert "cache.enabled=true" in out
    assert "delegate-eval experiment=local\n" in out
    assert "delegate-eval -m experiment=compare samples=10 device=cuda" in out
    assert "delegate-report --sweep" in out
    assert not (launch_dir / "outputs").exists()


@pytest.mark.parametrize(
    "arguments, line",
    [
        (["smaples=2"], "unknown key 'smaples' — did you mean 'samples'?"),
        (["llm.max_tokns=5"], "unknown key 'llm.max_tokns' — did you mean 'llm.max_tokens'?"),
        (
            ["strategy=router", "strategy.tool.nme=x"],
            "unknown key 'strategy.tool.nme' — did you mean 'strategy.tool.name'?",
        ),
        (["stratgy=router"], "unknown key 'stratgy' — did you mean 'strategy'?"),
        (
            ["strategy.max_rounds=3"],
            "unknown key 'strategy.max_rounds' for this strategy; it belongs to strategy=router",
        ),
        (["strategy=oracle"], "strategy=oracle is not an option; use one of llm, router, slm"),
        (
            ["data=gsm9k"],
            "data=gsm9k is not an option; did you mean data=gsm8k? (options: gsm8k, gsm8k-local, math500, sample, svamp)",
        ),
        (
            ["hydra/launcher=joblb"],
            "hydra/launcher=joblb is not an option; did you mean hydra/launcher=joblib? "
            "(options: basic, joblib, submitit_local, submitit_slurm)",
        ),
        (["samples=abc"], "samples=abc: not an integer"),
        (["llm.temperature=hot"], "llm.temperature=hot: not a number"),
        (["tracking.traces=maybe"], "tracking.traces=maybe: not true or false"),
        (["device=null"], "device=null: cannot be null"),
        (["llm.max_tokens_param=max"], "llm.max_tokens_param=max: use one of max_tokens, max_completion_tokens"),
        # A sweep: every job's config is checked before Hydra makes the sweep's folder.
        (["-m", "smaples=1,2"], "unknown key 'smaples' — did you mean 'samples'?"),
        (["-m", "strategy=llm,oracle"], "strategy=oracle is not an option; use one of llm, router, slm"),
        (["-m", "samples=2,abc"], "samples=abc: not an integer"),
        (
            ["-m", "strategy=router,llm", "strategy.max_rounds=2"],
            "unknown key 'strategy.max_rounds' for this strategy; it belongs to strategy=router",
        ),
    ],
)
def test_a_config_mistake_is_one_line_exit_2_and_leaves_nothing(launch_dir, capsys, arguments, line):
    status, err = stopped_with(arguments, capsys)
    assert status == 2
    assert err == f"error: {line}\n"
    # Hydra's hint would run a job with the typo as a key nothing reads.
    assert "+smaples" not in err
    assert list(launch_dir.iterdir()) == []
    assert "HYDRA_FULL_ERROR" not in os.environ


def test_a_sweeps_jobs_are_composed_as_hydra_would_run_them():
    # The preset's own sweep (strategy) times the command line's (seed): six jobs, each checked before the sweep starts.
    configs = job_configs(["experiment=compare-local", "seed=1,2", "samples=3"], sweep=True)
    assert sorted((c.strategy.name, c.seed, c.samples) for c in configs) == [
        (strategy, seed, 3) for strategy in ("llm", "router", "slm") for seed in (1, 2)
    ]
    # The command line's value replaces the preset's sweep.
    assert [c.strategy.name for c in job_configs(["experiment=compare-local", "strategy=router"], sweep=True)] == [
        "router"
    ]
    assert [c.samples for c in job_configs(["data=sample", "samples=2"], sweep=False)] == [2]


def test_an_override_hydra_cannot_read_is_one_line(launch_dir, capsys):
    status, err = stopped_with(["samples=[1"], capsys)
    assert status == 2
    assert err.startswith("error: could not read the override 'samples=[1': ") and err.count("\n") == 1


def test_the_name_of_a_served_model_defaults_to_its_model_id():
    assert compose_config(["llm=openai-compatible", f"llm.model={QWEN}"]).llm.name == QWEN
    assert compose_config(["slm=openai-compatible", "slm.model=qwen2.5-math"]).slm.name == "qwen2.5-math"
    assert compose_config(["llm=openai-compatible", f"llm.model={QWEN}", "llm.name=qwen-7b"]).llm.name == "qwen-7b"


def test_a_job_is_quiet_and_named_by_its_model_and_so_is_its_rerun(launch_dir, scripted_server, capfd):
    scripted_server.set_responder(
        lambda request: Reply(content="So \\boxed{4}.", prompt_tokens=12, completion_tokens=3)
    )
    common = ["llm=openai-compatible", f"llm.base_url={scripted_server.base_url}", f"llm.model={QWEN}"]
    main(["experiment=local", "strategy=llm", "samples=2", *common])
    out, err = capfd.readouterr()
    assert len(scripted_server.requests) == 2
    # No line per request (httpx's INFO), none for the store's creation (MLflow's), on the terminal or in the log.
    [log] = list(launch_dir.glob("outputs/*/*/evaluate.log"))
    for shown in (out, err, log.read_text()):
        assert "HTTP Request" not in shown and "httpx" not in shown
        assert "Creating initial MLflow database tables" not in shown
    client = MlflowClient(f"sqlite:///{launch_dir}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("delegate-gsm8k").experiment_id])
    assert run.info.run_name == f"llm-{QWEN}-n2-s123"
    assert run.data.tags["llm"] == QWEN and run.data.params["llm.name"] == QWEN
    assert f"llm ({QWEN})" in out
    # The saved config keeps the default as a default, and a rerun of it (saved_config_arguments) resolves it.
    saved = log.parent / ".hydra"
    assert "name: ${.model}" in (saved / "config.yaml").read_text()
    main(["--config-path", str(saved), "--config-name", "config", "samples=1"])
    names = sorted(r.info.run_name for r in client.search_runs([run.info.experiment_id]))
    assert names == [f"llm-{QWEN}-n1-s123", f"llm-{QWEN}-n2-s123"]


def test_a_hub_warning_is_shown_once_under_hydras_logging():
    """huggingface_hub prints its lines through its own handler and passed them on to the root logger too, where
    Hydra's job logging printed them again (offline, every retry line twice)."""
    from huggingface_hub.utils import logging as hub_logging

    root = logging.getLogger()
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    root.addHandler(handler)
    try:
        quiet_libraries()
        hub_logging.get_logger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
    finally:
        root.removeHandler(handler)
    assert seen == []
    # Still shown once, by the library's own handler.
    assert logging.getLogger("huggingface_hub").handlers


def test_the_console_script_says_one_line_and_exits_2(tmp_path):
    done = subprocess.run([str(DELEGATE_EVAL), "smaples=2"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "error: unknown key 'smaples' — did you mean 'samples'?\n"
    assert done.stdout == "" and list(Path(tmp_path).iterdir()) == []


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_a_run_stopped_by_its_budget_says_so_in_one_line(launch_dir, scripted_server, capsys, sweep):
    # 10 prompt tokens a call at 100,000 USD per 1M: 1 USD a problem, so a budget of 2 USD stops the run.
    scripted_server.default = Reply(content="So \\boxed{4}.", prompt_tokens=10, completion_tokens=3)
    arguments = [
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "strategy=llm",
        "data=sample",
        "samples=4",
        "concurrency=1",
        "llm.price_input_usd_per_1m=100000",
        "max_cost_usd=2",
    ]
    status, err = stopped_with(["-m", *arguments] if sweep else arguments, capsys)
    assert status == 1
    stopped = [line for line in err.splitlines() if line.startswith("stopped: ")]
    assert len(stopped) == 1 and stopped[0].startswith("stopped: max_cost_usd=2"), err
    assert "Traceback" not in err and "error: max_cost_usd" not in err
    if sweep:
        # The sweep goes on with its other jobs (none here), then says which did not finish.
        assert err.strip().splitlines()[-1].startswith("error: 1 of 1 sweep jobs did not finish")


def test_help_imports_no_model_sdk():
    # Discovering strategies and backends for --help must not pay for torch, transformers or the openai SDK.
    code = (
        "import contextlib, io, sys\n"
        "from pipelines.evaluate import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'openai') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_a_sweep_over_quoted_values_reads_them_as_hydra_does():
    from delegate.cli import job_configs

    configs = job_configs(
        ["strategy=llm", "llm=openai-compatible", "llm.base_url='http://127.0.0.1:1/v1','http://127.0.0.1:2/v1'"],
        sweep=True,
    )
    assert [cfg.llm.base_url for cfg in configs] == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
    assert all(isinstance(cfg.llm.base_url, str) for cfg in configs)
