"""The dataset configs in conf/data compose and load their files from the shared data folder with no per-dataset
path: SVAMP's question template and numeric golds, MATH-500's LaTeX golds for the symbolic scorer, GSM8K offline."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from delegate.compose import compose_config
from delegate.data import read_split
from delegate.scoring import get_scorer

# The folder `shared/data` beside the checkout.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared/data"


@pytest.fixture(autouse=True)
def data_dir(monkeypatch):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared data folder is not at {SHARED_DATA}")
    monkeypatch.setenv("DELEGATE_DATA_DIR", str(SHARED_DATA))


def rows(path: str) -> list[dict]:
    with (SHARED_DATA / path).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def split_of(dataset: str):
    return read_split(OmegaConf.to_object(compose_config([f"data={dataset}"]).data))


def test_svamp_asks_body_then_question_and_scores_numbers():
    split = split_of("svamp")
    first = rows("svamp/test.jsonl")[0]
    assert (len(split.problems), split.n_skipped) == (1000, 0)
    problem = split.problems[0]
    assert problem.question == f"{first['Body']} {first['Question']}"
    assert (problem.gold, problem.dataset, problem.scorers) == ("145.0", "svamp/test", ("numeric",))


def test_math500_keeps_latex_golds_that_its_solutions_box():
    split = split_of("math500")
    lines = rows("math500/test.jsonl")
    assert (len(split.problems), split.n_skipped) == (500, 0)
    assert split.problems[0].gold == r"\left( 3, \frac{\pi}{2} \right)"
    assert {p.scorers for p in split.problems} == {("symbolic",)}
    assert [p.question for p in split.problems] == [line["problem"] for line in lines]
    symbolic = get_scorer("symbolic")
    # Each solution's last \boxed{...}, nested braces and all, is its gold.
    assert all(symbolic.extract(line["solution"]).answer == p.gold for line, p in zip(lines, split.problems))


def test_gsm8k_local_is_the_hub_split_offline():
    split = split_of("gsm8k-local")
    assert len(split.problems) == 1319
    assert split.problems[0].dataset == "gsm8k/test"
    assert split.problems[0].gold == rows("gsm8k/test.jsonl")[0]["answer"].rsplit("####", 1)[1].strip()
