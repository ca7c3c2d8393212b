"""Labels for runs, and finding a sweep's runs; reading runs from MLflow is tested end to end in tests/pipelines."""

import json

import pytest

from delegate.errors import ConfigError
from delegate.records import RoleUsage
from delegate.report.runs import LoadedRun, label_runs, method_label, sweep_run_ids
from tests.support.records import make_record


def test_method_label_names_the_models_of_the_roles_the_strategy_uses():
    models = {"llm": "gpt-4o", "slm": "qwen2.5-math-1.5b"}
    assert method_label("router", models, []) == "router (gpt-4o -> qwen2.5-math-1.5b)"
    assert method_label("llm", models, []) == "llm (gpt-4o)"
    assert method_label("slm", models, []) == "slm (qwen2.5-math-1.5b)"


def test_an_unknown_strategy_is_labelled_by_the_roles_that_made_calls():
    records = [make_record(0, usage={"slm": RoleUsage(calls=1)})]
    assert method_label("cascade", {"llm": "big", "slm": "small"}, records) == "cascade (small)"


def run(name: str, method: str, run_id: str) -> LoadedRun:
    return LoadedRun(run_id, name, "1", method.split()[0], method, [make_record(0)])


def test_labels_add_the_run_name_only_where_methods_repeat():
    runs = [run("a", "llm (big)", "1" * 32), run("b", "llm (big)", "2" * 32), run("c", "slm (small)", "3" * 32)]
    label_runs(runs)
    assert [r.label for r in runs] == ["llm (big) [a]", "llm (big) [b]", "slm (small)"]


def test_labels_add_the_run_id_where_names_repeat_too():
    runs = [run("same", "llm (big)", "1" * 32), run("same", "llm (big)", "2" * 32)]
    label_runs(runs)
    assert [r.label for r in runs] == ["llm (big) [same] 11111111", "llm (big) [same] 22222222"]


def test_sweep_run_ids_come_from_each_job_folder(tmp_path):
    for number, run_id in ((0, "aaa"), (1, "bbb")):
        job = tmp_path / f"{number}-llm"
        job.mkdir()
        (job / "run_info.json").write_text(json.dumps({"run_id": run_id}))
    (tmp_path / "multirun.yaml").write_text("{}")
    assert sweep_run_ids(tmp_path) == ["aaa", "bbb"]


def test_a_folder_without_jobs_is_not_a_sweep(tmp_path):
    with pytest.raises(ConfigError, match=r"--sweep .*: no job folders with run_info.json"):
        sweep_run_ids(tmp_path)
    with pytest.raises(ConfigError, match=r"--sweep .*missing: no such folder"):
        sweep_run_ids(tmp_path / "missing")
