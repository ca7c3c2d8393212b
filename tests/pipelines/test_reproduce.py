"""delegate-reproduce: a run re-run from its saved config gives the same metrics without a model call; plain Hydra re-runs it too."""

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from mlflow import MlflowClient
from omegaconf import OmegaConf

from delegate.compose import compose_config, typed_config
from delegate.config.schema import Config, DataConfig
from delegate.data import load_problems
from delegate.reproduce import REPRODUCES_TAG, MetricComparison, saved_config_arguments, verdict
from delegate.testing.scripted_server import Reply, ScriptedServer
from pipelines.reproduce import main as reproduce_main
from tests.support.cli import DELEGATE_EVAL

GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}
TIMING = {"avg_latency_s", "p50_latency_s", "p95_latency_s", "avg_slm_latency_s"}
CACHE = {"cache_hit_rate", "cache_saved_usd"}


def half_right(request: dict) -> Reply:
    """Right for even golds, wrong for odd ones, with usage that differs per problem."""
    gold = GOLD_BY_QUESTION[request["messages"][-1]["content"]]
    answer = gold if int(gold) % 2 == 0 else "-1"
    return Reply(
        content=f"So the total is \\boxed{{{answer}}}.",
        prompt_tokens=len(gold) + 40,
        completion_tokens=int(gold) % 7 + 3,
    )


def environment() -> dict[str, str]:
    """This process's environment without $MLFLOW_TRACKING_URI, so the store defaults to <launch dir>/mlflow.db."""
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def eval_cli(cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DELEGATE_EVAL), *arguments], cwd=cwd, env=environment(), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A real delegate-eval run (Hydra's own .hydra/ folder), cache and store at their defaults in its launch dir."""
    launch_dir = tmp_path_factory.mktemp("launch")
    with ScriptedServer(half_right) as server:
        done = eval_cli(
            launch_dir,
            "experiment=local",
            "strategy=llm",
            "llm=openai-compatible",
            f"llm.base_url={server.base_url}",
            "llm.price_input_usd_per_1m=2.5",
            "llm.price_output_usd_per_1m=10",
            "samples=4",
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(server.requests) == 4
        client = MlflowClient(f"sqlite:///{launch_dir}/mlflow.db")
        [run] = client.search_runs(client.get_experiment_by_name("delegate-gsm8k").experiment_id)
        [folder] = (launch_dir / "outputs").glob("*/*-llm")
        yield SimpleNamespace(launch_dir=launch_dir, server=server, client=client, run=run, folder=folder)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Reproduce from another directory than the original's launch dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def reproductions_of(original, run_id: str) -> list:
    return original.client.search_runs(
        original.run.info.experiment_id,
        filter_string=f"tags.`{REPRODUCES_TAG}` = '{run_id}'",
        order_by=["attributes.start_time ASC"],
    )


def assert_same_results(made: dict[str, float], replayed: dict[str, float]) -> None:
    """Every metric but timing and cache ones equal, exactly; the replay answered everything from the cache."""
    assert set(made) == set(replayed) >= TIMING | CACHE | {"accuracy", "cost_usd", "n_samples"}
    for name in set(made) - TIMING - CACHE:
        assert replayed[name] == made[name], name
    assert made["cost_usd"] > 0 and made["cache_hit_rate"] == 0
    assert replayed["cache_hit_rate"] == 1.0


def test_a_reproduction_by_run_id_gives_the_same_metrics_without_a_model_call(original, elsewhere, capsys):
    requests_before = len(original.server.requests)
    reproduce_main([original.run.info.run_id, "--tracking-uri", f"sqlite:///{original.launch_dir}/mlflow.db"])

    assert len(original.server.requests) == requests_before
    [reproduction] = reproductions_of(original, original.run.info.run_id)
    assert reproduction.info.status == "FINISHED"
    assert_same_results(original.run.data.metrics, reproduction.data.metrics)
    assert reproduction.data.params == original.run.data.params

    out = capsys.readouterr().out
    assert f"overrides: none; relative paths resolved against {original.launch_dir}" in out
    lines = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line.split() and line.split()[0] in reproduction.data.metrics
    }
    assert set(lines) == set(original.run.data.metrics)
    assert "≠" not in lines["accuracy"] and lines["cache_hit_rate"][-2:] == ["≠", "cache"]
    assert "metrics differ, all expected to vary" in out

    # Its own folder holds what Hydra would have saved, so the reproduction can itself be reproduced.
    folder = Path(reproduction.data.tags["delegate.output_dir"])
    assert folder.is_relative_to(elsewhere / "outputs" / "reproduce")
    hydra_dir = folder / ".hydra"
    assert OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.cwd == str(original.launch_dir)
    assert yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) == []
    assert (folder / "run_info.json").is_file()
    artifacts = {a.path for a in original.client.list_artifacts(reproduction.info.run_id, ".hydra")}
    assert {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"} <= artifacts


def test_a_reproduction_from_the_run_folder_shows_its_overrides_and_can_be_reproduced(original, elsewhere, capsys):
    reproduce_main([str(original.folder), "samples=2"])
    [reproduction] = [
        r for r in reproductions_of(original, original.run.info.run_id) if r.data.params["samples"] == "2"
    ]
    assert reproduction.data.metrics["n_samples"] == 2
    out = capsys.readouterr().out
    assert "overrides: samples=2;" in out and "the overrides changed the config" in out
    assert [line.split()[1:] for line in out.splitlines() if line.split()[:1] == ["n_samples"]] == [["4", "2", "≠"]]

    # The reproduction can be reproduced, even with its folder gone (its .hydra/ comes from the run's artifacts):
    # same metrics, no model call, paths still resolved against the original launch dir.
    shutil.rmtree(reproduction.data.tags["delegate.output_dir"])
    requests_before = len(original.server.requests)
    reproduce_main([reproduction.info.run_id, "--tracking-uri", f"sqlite:///{original.launch_dir}/mlflow.db"])
    assert len(original.server.requests) == requests_before
    assert f"relative paths resolved against {original.launch_dir}" in capsys.readouterr().out
    [again] = reproductions_of(original, reproduction.info.run_id)
    for name in set(reproduction.data.metrics) - TIMING - CACHE:
        assert again.data.metrics[name] == reproduction.data.metrics[name], name


def test_plain_hydra_reruns_the_saved_config(original):
    """`delegate-eval --config-dir <run>/.hydra --config-name config` from the launch dir: same results, from the cache."""
    requests_before = len(original.server.requests)
    saved = original.folder.relative_to(original.launch_dir) / ".hydra"
    done = eval_cli(original.launch_dir, "--config-dir", str(saved), "--config-name", "config")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(original.server.requests) == requests_before
    rerun = original.client.search_runs(original.run.info.experiment_id, order_by=["attributes.start_time DESC"])[0]
    assert rerun.info.run_id != original.run.info.run_id and REPRODUCES_TAG not in rerun.data.tags
    assert_same_results(original.run.data.metrics, rerun.data.metrics)
    assert rerun.data.params == original.run.data.params


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["0123456789abcdef"], "no MLflow store at sqlite:///"),
        (
            ["0123456789abcdef", "--tracking-uri", "{store}"],
            "0123456789abcdef: neither a run folder of delegate-eval nor a run id in",
        ),
        (["{folder}", "llm=gpt-4o"], "overrides llm=gpt-4o: "),
        (
            ["{folder}", "llm.max_tokenz=3"],
            "overrides llm.max_tokenz=3: unknown key 'llm.max_tokenz' — did you mean 'llm.max_tokens'?",
        ),
        (["{folder}", "smaples=3"], "overrides smaples=3: unknown key 'smaples' — did you mean 'samples'?"),
        (["{folder}", "samples=many"], "samples: Value 'many'"),
    ],
)
def test_a_mistake_is_one_line_and_exit_status_2(original, elsewhere, capsys, arguments, message):
    fill = {"store": f"sqlite:///{original.launch_dir}/mlflow.db", "folder": str(original.folder)}
    with pytest.raises(SystemExit) as exit_status:
        reproduce_main([a.format(**fill) for a in arguments])
    assert exit_status.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (elsewhere / "mlflow.db").exists() and not (elsewhere / "outputs").exists()


# The pieces, without a run


def test_hydra_flags_at_a_saved_folder_load_it_and_others_are_left_alone(tmp_path):
    saved = tmp_path / "outputs" / "run" / ".hydra"
    saved.mkdir(parents=True)
    (saved / "config.yaml").write_text("samples: 1\n")
    (saved / "hydra.yaml").write_text("hydra: {}\n")
    (tmp_path / "mine").mkdir()
    absolute = str(saved)
    for given in (
        ["--config-dir", "outputs/run/.hydra"],
        ["-cd=outputs/run/.hydra"],
        ["--config-path", "outputs/run/.hydra"],
        ["-cp", absolute],
        ["--config-path=outputs/run/.hydra"],
    ):
        assert saved_config_arguments([*given, "-cn", "config", "samples=2"], tmp_path) == [
            "--config-path",
            absolute,
            "-cn",
            "config",
            "samples=2",
        ], given
    for untouched in (
        ["--config-dir", "mine", "x=1"],
        ["-cd=mine"],
        ["--cfg", "job", "-m", "seed=1,2"],
        ["--config-dir"],
    ):
        assert saved_config_arguments(untouched, tmp_path) == untouched


def test_a_saved_config_read_back_is_typed_as_composed(tmp_path):
    composed = compose_config(["experiment=local", "strategy=router"])
    OmegaConf.save(composed, tmp_path / "config.yaml")
    saved = OmegaConf.load(tmp_path / "config.yaml")
    typed = typed_config(saved)
    assert OmegaConf.get_type(typed) is Config
    assert typed.strategy.tool_result == composed.strategy.tool_result
    assert OmegaConf.to_container(typed) == OmegaConf.to_container(composed)
    assert typed_config(composed) is composed


def test_only_differences_in_metrics_expected_to_vary_keep_a_reproduction_equal():
    nan = float("nan")
    assert not MetricComparison("accuracy", nan, nan).differs
    assert MetricComparison("accuracy", 0.5, None).differs and MetricComparison("accuracy", None, 0.5).differs
    assert MetricComparison("p95_latency_s", 1.0, 2.0).expected_to_vary == "timing"
    assert MetricComparison("cache_saved_usd", 0.0, 1.0).expected_to_vary == "cache"
    same = [MetricComparison("accuracy", 0.5, 0.5)]
    assert verdict(same) == "all 1 metrics equal"
    assert verdict(same + [MetricComparison("avg_latency_s", 1.0, 2.0)]).endswith(
        "all expected to vary (timing); the rest are equal"
    )
    assert verdict([MetricComparison("accuracy", 0.5, 0.25)]) == "1 of 1 metrics differ, 1 not expected to: accuracy"


def test_a_reproduction_a_budget_stops_ends_with_one_line(original, elsewhere, capsys):
    with pytest.raises(SystemExit) as stop:
        reproduce_main([str(original.folder), "max_cost_usd=0.000001", "cache.enabled=false", "concurrency=1"])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("stopped: ")][0].startswith(
        "stopped: max_cost_usd=1e-06: "
    )

    # Reproduced in turn, the stopped run is run whole (without its budget), and the output says why counts differ.
    [stopped] = [r for r in reproductions_of(original, original.run.info.run_id) if r.data.tags.get("delegate.stopped")]
    with pytest.raises(SystemExit):
        reproduce_main([stopped.info.run_id, "--tracking-uri", f"sqlite:///{original.launch_dir}/mlflow.db"])
    out = capsys.readouterr().out
    assert "note: the original run was stopped early (max_cost_usd=1e-06: " in out
    [again] = reproductions_of(original, stopped.info.run_id)
    assert again.info.status == "FINISHED" and again.data.metrics["n_samples"] == 4
