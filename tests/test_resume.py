"""Resume: reading back what an interrupted job finished, and finding its run folder and MLflow run."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from delegate.compose import compose_config
from delegate.config.schema import TrackingConfig
from delegate.errors import ConfigError
from delegate.records import IncompatibleRecords, SampleRecord, SampleWriter, parse_record
from delegate.resume import (
    OUTPUT_DIR_TAG,
    _config_differences,
    find_previous_run,
    read_finished_records,
    write_run_info,
)
from delegate.tracking.mlflow_run import connect_store
from tests.support.records import make_record


def every_line(path: Path) -> list[SampleRecord]:
    """Strict: every line must be one JSON record (two records joined on a line fail here)."""
    return [parse_record(json.loads(line), "line") for line in path.read_text(encoding="utf-8").splitlines()]


def record(problem_id: int, **fields) -> SampleRecord:
    return make_record(problem_id, **{"response": f"\u00e9 {problem_id}"} | fields)


def jsonl(*records: SampleRecord) -> str:
    return "".join(r.to_json() + "\n" for r in records)


# read_finished_records


def test_a_line_cut_short_by_a_kill_is_dropped_and_the_file_mended(tmp_path):
    path = tmp_path / "samples.jsonl"
    whole = jsonl(record(3), record(1), record(7))
    cut = record(5, transcript=[{"role": "user", "content": "long"}] * 50).to_json()[:40]
    path.write_text(whole + cut, encoding="utf-8")

    assert read_finished_records(path) == [record(3), record(1), record(7)]
    assert path.read_text(encoding="utf-8") == whole
    # The resumed job appends to the mended file; every line is then a record.
    writer = SampleWriter(path)
    writer.write(record(5))
    writer.close()
    assert every_line(path) == [record(3), record(1), record(7), record(5)]


def test_blank_and_broken_lines_in_the_middle_are_dropped_too(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(jsonl(record(1)) + "\n" + '{"id": 2, "corr\n' + jsonl(record(3)), encoding="utf-8")
    assert [r.id for r in read_finished_records(path)] == [1, 3]
    assert path.read_text(encoding="utf-8") == jsonl(record(1), record(3))


def test_a_duplicate_id_keeps_the_first_record(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(jsonl(record(1, correct=False), record(2), record(1, correct=True)), encoding="utf-8")
    records = read_finished_records(path)
    assert records == [record(1, correct=False), record(2)]
    assert every_line(path) == records


def test_a_clean_file_is_left_as_it_is(tmp_path):
    path = tmp_path / "samples.jsonl"
    text = jsonl(record(2), record(1))
    path.write_text(text, encoding="utf-8")
    before_ns = path.stat().st_mtime_ns
    assert read_finished_records(path) == [record(2), record(1)]
    assert path.read_text(encoding="utf-8") == text
    assert path.stat().st_mtime_ns == before_ns


def test_a_missing_file_means_nothing_finished(tmp_path):
    path = tmp_path / "samples.jsonl"
    assert read_finished_records(path) == []
    assert not path.exists()


def test_a_whole_last_record_without_its_newline_still_takes_appends(tmp_path):
    # A kill between the record's closing brace and its newline (a large record is written in several pieces).
    path = tmp_path / "samples.jsonl"
    path.write_text(jsonl(record(1)) + record(2).to_json(), encoding="utf-8")
    assert [r.id for r in read_finished_records(path)] == [1, 2]
    writer = SampleWriter(path)
    writer.write(record(3))
    writer.close()
    assert [r.id for r in every_line(path)] == [1, 2, 3]


# find_previous_run


def test_a_problem_whose_model_call_failed_is_done_again(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(jsonl(record(1), record(2, error="APIConnectionError: down"), record(3)), encoding="utf-8")
    assert [r.id for r in read_finished_records(path)] == [1, 3]
    # The failed record is gone from the file, so the retry's record is the only one for problem 2.
    assert [r.id for r in every_line(path)] == [1, 3]


def test_a_line_separator_inside_a_model_text_does_not_split_its_record(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(jsonl(record(1, response="first\u2028second\u0085third"), record(2)), encoding="utf-8")
    assert [r.id for r in read_finished_records(path)] == [1, 2]
    assert read_finished_records(path)[0].response == "first\u2028second\u0085third"


def test_a_router_config_saved_by_hydra_equals_itself(tmp_path):
    """Enums (strategy.tool_result) must compare as the text Hydra saved, or no router job could resume."""
    cfg = compose_config(["strategy=router", "experiment=local"])
    OmegaConf.save(cfg, tmp_path / "config.yaml")
    assert _config_differences(tmp_path / "config.yaml", cfg) == []


def test_a_run_saved_before_the_data_settings_it_lacks_resumes_with_their_defaults(tmp_path):
    """A run saved before data.scorer, data.file, ... existed compares equal on them at their defaults, and a
    changed one is still named."""
    cfg = compose_config(["data=sample"])
    saved = OmegaConf.to_container(cfg)
    for key in ("file", "question_template", "gold_field", "scorer", "scorers"):
        del saved["data"][key]
    OmegaConf.save(OmegaConf.create(saved), tmp_path / "config.yaml")
    assert _config_differences(tmp_path / "config.yaml", cfg) == []
    assert _config_differences(tmp_path / "config.yaml", compose_config(["data=sample", "data.scorer=exact"])) == [
        "data.scorer"
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite MLflow store for these tests (creating one runs MLflow's migrations: seconds)."""
    root = tmp_path_factory.mktemp("store")
    return connect_store(TrackingConfig(uri=f"sqlite:///{root}/mlflow.db"), root)


def job_config(**overrides):
    return OmegaConf.create(
        {"seed": 123, "samples": 6, "llm": {"model": "m", "temperature": 0.0}, "resume": None} | overrides
    )


def interrupted_run(store, launch_dir: Path, name: str = "run") -> tuple[Path, str]:
    """A run folder as a killed job leaves it: .hydra/config.yaml, run_info.json, two records and half a third."""
    folder = launch_dir / "outputs" / name
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(job_config(), folder / ".hydra" / "config.yaml")
    run_id = store.client.create_run(store.experiment_id, tags={OUTPUT_DIR_TAG: str(folder.resolve())}).info.run_id
    write_run_info(folder, run_id)
    (folder / "samples.jsonl").write_text(jsonl(record(4), record(9)) + '{"id": 1', encoding="utf-8")
    return folder, run_id


@pytest.mark.parametrize("resume", ["0123456789abcdef0123456789abcdef", "outputs/no-such-run", "nope"])
def test_a_bogus_resume_value_is_a_config_error_naming_it(tmp_path, store, resume):
    with pytest.raises(ConfigError) as raised:
        find_previous_run(resume, tmp_path, store, job_config(resume=resume))
    message = str(raised.value)
    assert message.startswith(f"resume={resume}: ")
    assert store.tracking_uri in message
    assert "\n" not in message


def test_a_run_folder_relative_to_the_launch_dir_is_found(tmp_path, store):
    folder, run_id = interrupted_run(store, tmp_path)
    previous = find_previous_run("outputs/run", tmp_path, store, job_config(resume="outputs/run"))
    assert previous.output_dir == folder
    assert previous.run_id == run_id
    assert [r.id for r in previous.finished_records()] == [4, 9]
    # Mended on the way, ready for the resumed job to append.
    assert (folder / "samples.jsonl").read_text(encoding="utf-8") == jsonl(record(4), record(9))


def test_a_run_id_finds_its_folder_through_the_run_tag(tmp_path, store):
    folder, run_id = interrupted_run(store, tmp_path)
    previous = find_previous_run(run_id, tmp_path / "elsewhere", store, job_config(resume=run_id))
    assert (previous.output_dir, previous.run_id) == (folder.resolve(), run_id)
    assert [r.id for r in previous.finished_records()] == [4, 9]


def test_a_run_id_whose_folder_is_gone_is_a_config_error(tmp_path, store):
    run_id = store.client.create_run(store.experiment_id, tags={OUTPUT_DIR_TAG: str(tmp_path / "deleted")}).info.run_id
    with pytest.raises(ConfigError, match=rf"^resume={run_id}: its run folder .*deleted is gone"):
        find_previous_run(run_id, tmp_path, store, job_config(resume=run_id))


def test_a_changed_setting_refuses_to_resume_and_names_it(tmp_path, store):
    folder, _ = interrupted_run(store, tmp_path)
    before = (folder / "samples.jsonl").read_text(encoding="utf-8")
    changed = job_config(seed=99, llm={"model": "m", "temperature": 0.5}, resume=str(folder))
    with pytest.raises(ConfigError) as raised:
        find_previous_run(str(folder), tmp_path, store, changed)
    message = str(raised.value)
    assert message.startswith(
        f"resume={folder}: the config differs from the interrupted run's in llm.temperature, seed;"
    )
    # Refused before anything is touched.
    assert (folder / "samples.jsonl").read_text(encoding="utf-8") == before


def test_a_file_from_another_record_version_is_refused_not_dropped(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(jsonl(record(1)) + json.dumps({"id": 2, "correct": True, "llm": {}}) + "\n", encoding="utf-8")
    with pytest.raises(IncompatibleRecords, match=r"samples.jsonl:2: not a sample record of this delegate version"):
        read_finished_records(path)
    # Nothing was mended away.
    assert path.read_text(encoding="utf-8").count("\n") == 2
