"""The record-version-2 store in tests/fixtures/v2_store: copied where a test can write, and the scripted replies
that made it (so a resume or a reproduction gets the same answers)."""

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.testing.scripted_server import Reply, ScriptedServer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v2_store"
# Where the store was written: every absolute path in it starts here.
WRITTEN_AT = "/tmp/delegate-v2-fixture"
# The ports its scripted servers listened on (saved in each run's .hydra/config.yaml).
LLM_PORT, SLM_PORT = 44331, 44657
RUN_IDS = {
    "llm": "eb91f7135ed74381b4ef5f35e62a9c5f",
    "router": "a0262f2648a44a4ba621ab9a15c50c37",
    "slm": "6306717d6ecc46d6aab89045145487c5",
}

GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}


def copy_v2_store(destination: Path) -> Path:
    """The fixture copied to `destination` (created), its absolute paths rewritten to point there; returns it."""
    shutil.copytree(FIXTURE, destination, dirs_exist_ok=True)
    new = str(destination.resolve())
    with sqlite3.connect(destination / "mlflow.db") as db:
        db.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)", (WRITTEN_AT, new))
        db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (WRITTEN_AT, new))
        db.execute("UPDATE tags SET value = replace(value, ?, ?)", (WRITTEN_AT, new))
    for hydra_file in destination.glob("outputs/*/.hydra/*.yaml"):
        hydra_file.write_text(hydra_file.read_text(encoding="utf-8").replace(WRITTEN_AT, new), encoding="utf-8")
    return destination


def llm_reply(body: dict) -> Reply:
    """The LLM's replies: one delegation when offered the tool, then an answer right for even golds."""
    messages = body["messages"]
    question = next(m["content"] for m in messages if m["role"] == "user")
    gold = GOLD_BY_QUESTION.get(question, "1")
    if body.get("tools") and not any(m["role"] == "tool" for m in messages):
        arguments = json.dumps({"question": "What is " + gold + " plus 0?"})
        return Reply(
            tool_calls=[{"name": "ask_math_assistant", "arguments": arguments}], prompt_tokens=120, completion_tokens=20
        )
    answer = gold if int(gold) % 2 == 0 else "-1"
    return Reply(
        content=f"The total is \\boxed{{{answer}}}.",
        prompt_tokens=90 + len(question) % 13,
        completion_tokens=12 + int(gold) % 5,
    )


def slm_reply(body: dict) -> Reply:
    """The SLM's replies: sub-questions answered right, whole problems right unless the gold is a multiple of 3."""
    question = body["messages"][-1]["content"]
    if question.startswith("What is "):
        value = question.split()[2]
        return Reply(
            content=f"Adding gives {value}. So the answer is \\boxed{{{value}}}.",
            prompt_tokens=40,
            completion_tokens=15,
        )
    gold = GOLD_BY_QUESTION.get(question, "1")
    answer = gold if int(gold) % 3 else "0"
    return Reply(
        content=f"So \\boxed{{{answer}}}.", prompt_tokens=50 + len(question) % 7, completion_tokens=9 + int(gold) % 4
    )


@pytest.fixture
def v2_store(tmp_path) -> Path:
    """The fixture copied into `<tmp_path>/launch`, the folder its runs were launched from."""
    return copy_v2_store(tmp_path / "launch")


@pytest.fixture
def v2_servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    """The LLM and SLM servers, answering as they did, on the ports the fixture's runs were made against (their
    saved base_url); skipped when a port is taken."""
    llm, slm = ScriptedServer(llm_reply), ScriptedServer(slm_reply)
    try:
        llm.start(LLM_PORT)
        slm.start(SLM_PORT)
    except OSError as error:
        llm.stop()
        pytest.skip(f"a port the fixture's runs used is taken here ({error})")
    yield llm, slm
    llm.stop()
    slm.stop()
