"""load_problems reads built-in, local and tmp JSON-lines splits, draws seeded samples, and names bad settings."""

import json
from pathlib import Path

import pytest

from delegate.config.schema import DataConfig
from delegate.data import Problem, dataset_id, load_problems
from delegate.errors import ConfigError

GSM8K_TEST = Path(__file__).resolve().parents[2].parent / "shared/data/gsm8k/test.jsonl"
SAMPLE = DataConfig(name="sample", builtin="sample.jsonl")


@pytest.fixture(scope="module")
def gsm8k_lines() -> list[dict]:
    if not GSM8K_TEST.is_file():
        pytest.skip(f"GSM8K test split not found at {GSM8K_TEST}")
    with GSM8K_TEST.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def gsm8k_cfg(gsm8k_lines) -> DataConfig:
    return DataConfig(name="gsm8k", path=str(GSM8K_TEST))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_builtin_sample():
    problems = load_problems(SAMPLE, None, 123)
    assert len(problems) >= 20
    assert [p.id for p in problems] == list(range(len(problems)))
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.question.strip()
        assert problem.gold.lstrip("-").isdigit(), problem


def test_full_gsm8k_split(gsm8k_cfg, gsm8k_lines):
    problems = load_problems(gsm8k_cfg, None, 123)
    assert len(problems) == len(gsm8k_lines) == 1319
    assert [p.id for p in problems] == list(range(1319))
    assert problems[0].question == gsm8k_lines[0]["question"]
    assert problems[0].gold == gsm8k_lines[0]["answer"].split("####")[-1].strip()


def test_gsm8k_gold_drops_thousands_commas(gsm8k_cfg, gsm8k_lines):
    with_comma = [i for i, row in enumerate(gsm8k_lines) if "," in row["answer"].split("####")[-1]]
    assert with_comma, "expected some GSM8K gold answers written with thousands commas"
    problems = load_problems(gsm8k_cfg, None, 123)
    for i in with_comma:
        raw = gsm8k_lines[i]["answer"].split("####")[-1].strip()
        assert problems[i].gold == raw.replace(",", "")
        assert problems[i].gold.isdigit(), (i, raw)


def test_seeded_sample_is_stable_sorted_and_indexes_the_split(gsm8k_cfg, gsm8k_lines):
    first = load_problems(gsm8k_cfg, 50, 7)
    again = load_problems(gsm8k_cfg, 50, 7)
    ids = [p.id for p in first]
    assert len(ids) == len(set(ids)) == 50
    assert ids == [p.id for p in again]
    assert ids == sorted(ids)
    assert ids != list(range(50))
    for problem in first:
        assert problem.question == gsm8k_lines[problem.id]["question"]
    other_seed = [p.id for p in load_problems(gsm8k_cfg, 50, 8)]
    assert other_seed != ids


def test_sample_of_whole_split_is_every_problem():
    problems = load_problems(SAMPLE, None, 1)
    assert [p.id for p in load_problems(SAMPLE, len(problems), 1)] == [p.id for p in problems]


@pytest.mark.parametrize("samples", [0, -1, 10_000])
def test_out_of_range_samples_is_a_config_error(samples):
    with pytest.raises(ConfigError, match=f"samples={samples}"):
        load_problems(SAMPLE, samples, 123)


def test_missing_path_names_data_path(tmp_path):
    missing = tmp_path / "absent.jsonl"
    with pytest.raises(ConfigError, match="data.path=") as caught:
        load_problems(DataConfig(name="local", path=str(missing)), None, 123)
    assert str(missing) in str(caught.value)


def test_missing_builtin_names_data_builtin():
    with pytest.raises(ConfigError, match="data.builtin=absent.jsonl"):
        load_problems(DataConfig(name="sample", builtin="absent.jsonl"), None, 123)


def test_missing_question_field_names_it(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "1+1?", "answer": "#### 2"}])
    with pytest.raises(ConfigError, match="'question'") as caught:
        load_problems(DataConfig(name="local", path=str(path)), None, 123)
    assert "data.question_field" in str(caught.value)


def test_missing_answer_field_names_it(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"question": "1+1?", "solution": "#### 2"}])
    with pytest.raises(ConfigError, match="'answer'"):
        load_problems(DataConfig(name="local", path=str(path)), None, 123)


def test_custom_fields_and_no_gold_marker(tmp_path):
    rows = [{"problem": "What is 6*7?", "solution": "6*7 is 42, so the answer is 42"}, {"problem": "1+1?", "solution": " 2 "}]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    cfg = DataConfig(name="local", path=str(path), question_field="problem", answer_field="solution", gold_marker=None)
    problems = load_problems(cfg, None, 123)
    assert problems == [
        # The whole field is kept (only commas are dropped, as for any gold).
        Problem(id=0, question="What is 6*7?", gold="6*7 is 42 so the answer is 42", dataset="local/rows"),
        Problem(id=1, question="1+1?", gold="2", dataset="local/rows"),
    ]


def test_answers_without_the_gold_marker_name_the_setting(tmp_path):
    path = tmp_path / "no_marker.jsonl"
    path.write_text('{"question": "1+1?", "answer": "2"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"data.gold_marker='####': .*set data.gold_marker=null"):
        load_problems(DataConfig(name="custom", path=str(path)), None, 0)


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (DataConfig(name="gsm8k", hub_path="openai/gsm8k", hub_name="main", split="test"), "gsm8k/test"),
        (DataConfig(name="gsm8k", path="/data/gsm8k/train.jsonl"), "gsm8k/train"),
        (DataConfig(name="sample", builtin="sample.jsonl"), "sample/sample"),
    ],
)
def test_the_dataset_id_names_the_split_a_problem_comes_from(cfg, expected):
    assert dataset_id(cfg) == expected
