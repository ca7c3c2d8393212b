"""The record contract: one JSON line each way, equal after the round trip, and a clear refusal of anything else."""

import json

import pytest

from delegate.errors import ConfigError
from delegate.records import RECORD_VERSION, Delegation, IncompatibleRecords, RoleUsage, SampleWriter, read_records
from delegate.scoring import Score
from tests.support.records import make_record

RECORD = make_record(
    7,
    strategy="router",
    response="first\u2028second, caf\u00e9 \\boxed{12}",
    usage={"llm": RoleUsage(calls=2, prompt_tokens=120, completion_tokens=30, latency_s=1.5)},
    tool_calls=2,
    events={"over_limit": 1},
    delegations=[
        Delegation(
            "call_1",
            "ask_math_assistant",
            '{"question": "6*2?"}',
            "12",
            question="6*2?",
            slm_output="\\boxed{12}",
            slm_prompt_tokens=20,
            slm_completion_tokens=5,
            slm_latency_s=0.3,
            slm_cache_hit=False,
        ),
        Delegation("call_2", "ask_math_assistant", "{}", "over the limit", error="over_limit"),
    ],
    transcript=[{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": []}],
)


def test_a_record_survives_the_round_trip_through_a_file(tmp_path):
    writer = SampleWriter(tmp_path / "samples.jsonl")
    writer.write(RECORD)
    writer.write(make_record(8))
    writer.close()
    assert read_records(tmp_path / "samples.jsonl") == [RECORD, make_record(8)]


def test_the_json_on_disk_is_human_readable():
    data = json.loads(RECORD.to_json())
    assert "caf\u00e9" in RECORD.to_json()
    assert data["record_version"] == RECORD_VERSION
    assert data["usage"]["llm"] | {} == {
        "calls": 2,
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "latency_s": 1.5,
        "cache_hits": 0,
        "cached_prompt_tokens": 0,
        "cached_completion_tokens": 0,
        "tokens": 150,
        "usage_missing_calls": 0,
        "reasoning_tokens": 0,
        "provider_cached_prompt_tokens": 0,
        "cache_hit_provider_cached_prompt_tokens": 0,
    }
    assert data["delegations"][1]["error"] == "over_limit"


def test_derived_facts():
    assert RECORD.delegated and [d.answered for d in RECORD.delegations] == [True, False]
    assert not make_record(1).delegated


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"id": 1, "correct": true, "llm": {"prompt_tokens": 3}}',
            r"samples.jsonl:2: not a sample record of this delegate version \(record_version None",
        ),
        (
            json.dumps(json.loads(make_record(1).to_json()) | {"record_version": 1}),
            r"record_version 1, this version reads",
        ),
        (json.dumps(json.loads(make_record(1).to_json()) | {"correct": "maybe"}), r"samples.jsonl:2: field 'correct'"),
        ("# a README", r"samples.jsonl:2: not JSON"),
    ],
)
def test_anything_else_is_refused_with_the_line_and_the_fix(tmp_path, line, message):
    path = tmp_path / "samples.jsonl"
    path.write_text(make_record(0).to_json() + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(IncompatibleRecords, match=message) as raised:
        read_records(path)
    assert isinstance(raised.value, ConfigError) and "\n" not in str(raised.value)


def test_a_degraded_record_lists_its_failures_and_survives_the_round_trip(tmp_path):
    degraded = make_record(3, degraded=True, failures=["slm: RateLimitError (HTTP 429): slow down"])
    writer = SampleWriter(tmp_path / "samples.jsonl")
    writer.write(degraded)
    writer.close()
    data = json.loads(degraded.to_json())
    assert (data["degraded"], data["failures"]) == (True, ["slm: RateLimitError (HTTP 429): slow down"])
    assert read_records(tmp_path / "samples.jsonl") == [degraded]
    assert not degraded.clean and make_record(4).clean and not make_record(5, error="TimeoutError: x").clean


def test_a_line_written_before_degraded_existed_reads_as_not_degraded(tmp_path):
    # Same record version: the new fields have defaults.
    data = json.loads(make_record(1).to_json())
    del data["degraded"], data["failures"]
    (tmp_path / "samples.jsonl").write_text(json.dumps(data) + "\n", encoding="utf-8")
    [record] = read_records(tmp_path / "samples.jsonl")
    assert (record.degraded, record.failures, record.record_version) == (False, [], RECORD_VERSION)


def test_every_scorers_verdict_survives_the_round_trip_primary_first(tmp_path):
    scores = {"symbolic": Score(r"\frac{14}{3}", "boxed", True), "exact": Score(r"\frac{14}{3}", "boxed", False)}
    record = make_record(5, extracted=r"\frac{14}{3}", scores=scores)
    writer = SampleWriter(tmp_path / "samples.jsonl")
    writer.write(record)
    writer.close()
    [read] = read_records(tmp_path / "samples.jsonl")
    assert read == record and list(read.scores) == ["symbolic", "exact"]
    assert read.all_scores == scores


def test_a_line_written_before_scores_existed_reads_as_scored_by_the_numeric_scorer(tmp_path):
    data = json.loads(make_record(2, extracted="7", extraction_rule="answer_is", correct=False).to_json())
    del data["scores"]
    (tmp_path / "samples.jsonl").write_text(json.dumps(data) + "\n", encoding="utf-8")
    [old] = read_records(tmp_path / "samples.jsonl")
    assert old.record_version == RECORD_VERSION and old.scores == {}
    assert old.all_scores == {"numeric": Score("7", "answer_is", False)}
