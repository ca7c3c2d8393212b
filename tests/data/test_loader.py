"""The loader reads built-in, local and tmp JSON-lines splits row by row, draws seeded samples of the usable problems,
and names a bad setting or a bad line in one line."""

import json
import logging
import re
from pathlib import Path

import pytest

from delegate.config.schema import DataConfig
from delegate.data import Problem, dataset_id, load_problems, load_split, read_split
from delegate.errors import ConfigError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared/data"
GSM8K_TEST = SHARED_DATA / "gsm8k/test.jsonl"
SVAMP_TEST = SHARED_DATA / "svamp/test.jsonl"
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
    rows = [
        {"problem": "What is 6*7?", "solution": "6*7 is 42, so the answer is 42"},
        {"problem": "1+1?", "solution": " 2 "},
    ]
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


def local(path: Path, **fields) -> DataConfig:
    return DataConfig(name="local", path=str(path), **fields)


def one_line_error(cfg: DataConfig) -> str:
    with pytest.raises(ConfigError) as caught:
        read_split(cfg)
    assert "\n" not in str(caught.value)
    return str(caught.value)


ROW = '{"question": "1+1?", "answer": "#### 2"}\n'


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "# GSM8K\n\nA README, not data.\n",
            "not a JSON-lines file (line 1: Expecting value at column 1); give a file with one JSON object per line",
        ),
        (
            "question,answer\n1+1?,2\n",
            "not a JSON-lines file (line 1: Expecting value at column 1); give a file with one JSON object per line",
        ),
        ("", "the file is empty; give a JSON-lines file with one problem per line"),
        ("\n  \n", "the file is empty; give a JSON-lines file with one problem per line"),
        (
            ROW + ROW + '{"question": "2+2?", "answer": \n' + ROW,
            "line 3 is not valid JSON (Expecting value at column 32); fix that line (one JSON object per line)",
        ),
        (ROW + '["1+1?", "2"]\n', "line 2 is an array, not a JSON object; give a file with one JSON object per line"),
        (
            ROW + '{"question": "2+2?"}\n' + ROW,
            "line 2 has no 'answer' field, which the other rows have; fix that line (or remove it)",
        ),
        (
            '{"prompt": "1+1?", "answer": "#### 2"}\n' * 2,
            "no row has a 'question' field (line 1 has prompt, answer); "
            "set data.question_field to the field that holds the question",
        ),
        (
            b"\xff\xfe\x00binary".decode("latin-1"),
            "not a JSON-lines file (line 1 is not UTF-8 text); give a file with one JSON object per line",
        ),
    ],
    ids=[
        "readme",
        "csv",
        "empty",
        "blank",
        "broken-line-3",
        "not-an-object",
        "missing-answer-line-2",
        "no-question",
        "binary",
    ],
)
def test_a_bad_file_is_one_line_naming_it_and_the_line(tmp_path, text, line):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(text.encode("latin-1"))
    assert one_line_error(local(path)) == f"data.path={path}: {line}"


def test_the_shared_readmes_are_not_data(tmp_path):
    for readme in (SHARED_DATA / "gsm8k/README.md", SHARED_DATA / "svamp/README.md"):
        if readme.is_file():
            assert "not a JSON-lines file (line 1:" in one_line_error(local(readme))


def test_svamp_loads_with_its_own_fields_and_no_marker():
    if not SVAMP_TEST.is_file():
        pytest.skip(f"SVAMP not found at {SVAMP_TEST}")
    # As it is: no row has the default field, and the line says which setting to change.
    assert "set data.question_field" in one_line_error(DataConfig(name="svamp", path=str(SVAMP_TEST)))
    cfg = DataConfig(
        name="svamp", path=str(SVAMP_TEST), question_field="Question", answer_field="Answer", gold_marker=None
    )
    split = read_split(cfg)
    assert (len(split.problems), split.n_skipped) == (1000, 0)
    first = json.loads(SVAMP_TEST.open(encoding="utf-8").readline())
    assert split.problems[0] == Problem(
        id=0, question=first["Question"], gold=str(first["Answer"]), dataset="svamp/test"
    )


def test_a_gold_marker_no_answer_has_names_the_setting(tmp_path):
    path = write_jsonl(
        tmp_path / "rows.jsonl", [{"question": "1+1?", "answer": "2"}, {"question": "2+2?", "answer": "4"}]
    )
    assert one_line_error(local(path)) == (
        "data.gold_marker='####': no answer in data.path="
        f"{path} has it (line 1: '2'); "
        "set data.gold_marker=null to use the whole answer field"
    )


def test_rows_whose_gold_is_not_a_number_are_skipped_counted_and_warned_once(tmp_path, caplog):
    rows = [
        {"question": "1+1?", "answer": "#### 2"},
        {"question": "Name a colour.", "answer": "#### blue"},
        {"question": "3+3?", "answer": "#### 6"},
        # No marker where the others have one: no gold to read either.
        {"question": "4+4?", "answer": "eight"},
        {"question": "5+5?", "answer": "#### 1,0"},
    ]
    cfg = local(write_jsonl(tmp_path / "rows.jsonl", rows))
    with caplog.at_level(logging.WARNING):
        split = read_split(cfg)
    assert caplog.records == []
    assert [p.id for p in split.problems] == [0, 2, 4]
    assert (split.n_skipped, split.first_skipped) == (2, "line 2")
    with caplog.at_level(logging.WARNING):
        loaded = load_split(cfg, None, 0)
    assert [r.getMessage() for r in caplog.records] == [
        f"data.path={cfg.path}: 2 of 5 rows skipped, gold answer not a number (the first: line 2); "
        "counted as n_skipped, not scored"
    ]
    assert loaded.n_skipped == 2
    # Samples come from the usable rows only, and keep the ids of the split.
    for seed in range(5):
        assert {p.id for p in load_problems(cfg, 2, seed)} <= {0, 2, 4}
    with pytest.raises(
        ConfigError,
        match=rf"samples=4: data.path={re.escape(str(cfg.path))} has 3 usable problems \(2 skipped\); use 1..3",
    ):
        load_problems(cfg, 4, 0)


def test_a_split_with_no_usable_gold_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"question": "Colour?", "answer": "#### blue"}])
    assert one_line_error(local(path)).endswith("check data.answer_field=answer and data.gold_marker")


def test_a_question_template_joins_fields_and_gold_field_names_the_gold(tmp_path):
    rows = [{"Body": "Tom has 3 apples.", "Question": "How many now?", "Answer": 3.0, "n": 1}]
    cfg = local(
        write_jsonl(tmp_path / "rows.jsonl", rows),
        question_template="{Body} {Question}",
        gold_field="Answer",
        gold_marker=None,
    )
    assert read_split(cfg).problems == [
        Problem(id=0, question="Tom has 3 apples. How many now?", gold="3.0", dataset="local/rows")
    ]


def test_a_template_field_no_row_has_is_one_line_naming_the_template_and_the_fields(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"Body": "b", "Question": "q", "answer": "#### 1"}])
    assert one_line_error(local(path, question_template="{Body} {Questoin}")) == (
        f"data.path={path}: no row has a 'Questoin' field (line 1 has Body, Question, answer); "
        "fix data.question_template='{Body} {Questoin}' to use the fields the file has"
    )
    assert one_line_error(local(path, question_template="Body Question")).startswith(
        "data.question_template='Body Question': names no field;"
    )


def test_a_missing_gold_field_names_data_gold_field(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"question": "1+1?", "answer": "#### 2"}])
    assert one_line_error(local(path, gold_field="Answer")).endswith(
        "no row has a 'Answer' field (line 1 has question, answer); set data.gold_field to the field that holds the answer"
    )


def test_data_file_is_read_from_the_data_folder_and_data_path_wins(tmp_path, monkeypatch):
    folder = tmp_path / "datasets"
    (folder / "tiny").mkdir(parents=True)
    write_jsonl(folder / "tiny" / "test.jsonl", [{"question": "1+1?", "answer": "#### 2"}])
    monkeypatch.setenv("DELEGATE_DATA_DIR", str(folder))
    cfg = DataConfig(name="tiny", file="tiny/test.jsonl")
    assert read_split(cfg).problems == [Problem(id=0, question="1+1?", gold="2", dataset="tiny/test")]
    other = write_jsonl(tmp_path / "other.jsonl", [{"question": "2+2?", "answer": "#### 4"}])
    assert read_split(DataConfig(name="tiny", file="tiny/test.jsonl", path=str(other))).problems[0].gold == "4"
    # Unset, the folder is ./data of the launch directory.
    monkeypatch.delenv("DELEGATE_DATA_DIR")
    monkeypatch.chdir(folder.parent)
    folder.rename(tmp_path / "data")
    assert len(read_split(cfg).problems) == 1


def test_a_file_missing_from_the_data_folder_names_the_setting_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("DELEGATE_DATA_DIR", str(tmp_path))
    assert one_line_error(DataConfig(name="svamp", file="svamp/test.jsonl")) == (
        f"data.file=svamp/test.jsonl: no such file in the data folder {tmp_path} (DELEGATE_DATA_DIR={tmp_path}); "
        "set DELEGATE_DATA_DIR to the folder that holds svamp/test.jsonl, or give data.path=<file.jsonl>"
    )
    monkeypatch.delenv("DELEGATE_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert "(DELEGATE_DATA_DIR unset, so ./data); set DELEGATE_DATA_DIR" in one_line_error(
        DataConfig(name="svamp", file="svamp/test.jsonl")
    )


def test_the_datasets_scorer_reads_the_gold_and_its_unusable_golds_are_skipped(tmp_path, caplog):
    rows = [
        {"problem": "Polar form of (0,3)?", "answer": r"\left( 3, \frac{\pi}{2} \right)"},
        {"problem": "Blank?", "answer": " "},
        {"problem": "1,000 + 1?", "answer": "1,001"},
    ]
    cfg = local(
        write_jsonl(tmp_path / "rows.jsonl", rows),
        question_field="problem",
        gold_marker=None,
        scorer="symbolic",
        scorers=["exact", "symbolic"],
    )
    with caplog.at_level(logging.WARNING):
        split = load_split(cfg, None, 0)
    # Commas stay: they are part of a tuple, and only the numeric scorer reads them as thousands separators.
    assert [p.gold for p in split.problems] == [r"\left( 3, \frac{\pi}{2} \right)", "1,001"]
    assert {p.scorers for p in split.problems} == {("symbolic", "exact")}
    assert [r.getMessage() for r in caplog.records] == [
        f"data.path={cfg.path}: 1 of 3 rows skipped, gold answer empty (the first: line 2); counted as n_skipped, not scored"
    ]


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        (
            {"scorer": "numerc"},
            "data.scorer=numerc is unknown; use one of ['exact', 'numeric', 'symbolic'] (one of your own: name the module that registers it in DELEGATE_PLUGINS)",
        ),
        (
            {"scorers": ["exact", "symbolc"]},
            "data.scorers: symbolc is unknown; use one of ['exact', 'numeric', 'symbolic'] (one of your own: name the module that registers it in DELEGATE_PLUGINS)",
        ),
    ],
)
def test_an_unknown_scorer_is_one_line_naming_its_setting(tmp_path, fields, line):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"question": "1+1?", "answer": "#### 2"}])
    assert one_line_error(local(path, **fields)) == line
