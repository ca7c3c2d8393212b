"""A new answer type through one scorer module and one YAML key: the worked example docs/examples/choice.py
(multiple-choice letters) and its dataset docs/examples/conf/data/letters.yaml, loaded with DELEGATE_PLUGINS and
DELEGATE_CONFIG_DIR, run by the real `delegate-eval` on a data file of the user's, then re-scored by delegate-score."""

import json
import subprocess
from pathlib import Path

from delegate.records import read_records
from delegate.run_folder import SAMPLES_FILE
from delegate.testing.scripted_server import Reply
from tests.support.cli import DELEGATE_EVAL, mlflow_runs, run_eval
from tests.support.plugins import plugin_env

ROWS = [
    {"question": "Which is a prime?", "options": "(A) 4 (B) 6 (C) 7 (D) 9", "answer": "C"},
    {"question": "Which is even?", "options": "(A) 3 (B) 8 (C) 5 (D) 7", "answer": "(B)"},
    {"question": "Which is largest?", "options": "(A) 10 (B) 2 (C) 3 (D) 1", "answer": "A"},
    {"question": "Which is a square?", "options": "(A) 5 (B) 7 (C) 8 (D) 9", "answer": "D"},
    {"question": "Which is a colour?", "options": "(A) red (B) run (C) ten", "answer": "maybe"},
]


def reply(body: dict) -> Reply:
    """Answers the first three right, the fourth wrong (A for D)."""
    question = body["messages"][-1]["content"]
    answers = {"prime": "C", "even": "B", "largest": "A", "square": "A"}
    letter = next(letter for word, letter in answers.items() if word in question)
    return Reply(content=f"Looking at the options, the answer is ({letter}).")


def test_a_new_answer_type_is_one_module_and_one_yaml_key(tmp_path, scripted_server):
    data_dir = tmp_path / "data" / "letters"
    data_dir.mkdir(parents=True)
    (data_dir / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    scripted_server.set_responder(reply)
    env = plugin_env("choice", DELEGATE_DATA_DIR=str(tmp_path / "data"))
    done = run_eval(
        tmp_path,
        "data=letters",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "tracking.experiment=letters",
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The fifth row's gold is no letter: skipped with one warning, counted.
    assert "gold answer not a letter from A to E" in done.stdout + done.stderr
    client, [run] = mlflow_runs(tmp_path, "letters")
    assert run.data.metrics["n_samples"] == 4 and run.data.metrics["n_skipped"] == 1
    assert run.data.metrics["accuracy"] == 0.75
    records = read_records(Path(client.download_artifacts(run.info.run_id, SAMPLES_FILE, str(tmp_path / "dl"))))
    assert {r.extraction_rule for r in records} == {"last_letter"}
    assert all(list(r.scores) == ["choice"] for r in records)
    # The question template joined two fields of the file.
    assert records[0].question.endswith("\nOptions: " + ROWS[records[0].id]["options"])
    # Judged again, exact text beside the letters ("(C)" reads as "c"): no verdict changes.
    score = rescore_cli(tmp_path, env, run.info.run_id, "data.scorers=[exact]")
    assert score.returncode == 0, score.stderr[-2000:]
    assert "0 of 4 verdicts of the primary scorer (choice) changed" in score.stdout
    assert "accuracy_exact" in score.stdout
    # A scorer of numbers cannot read a letter: one line, nothing logged.
    wrong = rescore_cli(tmp_path, env, run.info.run_id, "data.scorer=numeric")
    assert wrong.returncode == 2
    gold = next(r.gold for r in sorted(records, key=lambda r: r.id))
    assert wrong.stderr.strip().splitlines()[-1] == (
        f"error: data.scorer=numeric: the gold answer of problem 0 ({gold!r}) is not a number; "
        "re-score with a scorer that reads it"
    )
    assert len(mlflow_runs(tmp_path, "letters")[1]) == 2


def rescore_cli(cwd: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    command = [str(DELEGATE_EVAL.with_name("delegate-score")), *arguments]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
