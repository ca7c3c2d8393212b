"""The router over servers that send malformed or incomplete replies (real config, real SDK, scripted servers on
loopback): a server's quirk never fails the problem, never pairs a tool message with the wrong call, and never
passes a tool call or a missing count off as something else. Also a reasoning model as the LLM, in a whole job."""

import json
import math

import pytest

from delegate.compose import compose_config
from delegate.errors import ConfigError
from delegate.job import run_job
from delegate.records import read_records
from delegate.run_folder import SAMPLES_FILE
from delegate.testing.scripted_server import Reply
from tests.support.router import solve

TOOL = "ask_math_assistant"
ANSWER = Reply(content="So 8 boxes of 6: \\boxed{48}")


@pytest.fixture
def slm(slm):
    slm.default = Reply(content="6*8 = 48. \\boxed{48}")
    return slm


def native(*calls, content=None) -> Reply:
    """An LLM turn whose message carries `calls` exactly as given (raw tool-call objects)."""
    return Reply(raw_message={"role": "assistant", "content": content, "tool_calls": list(calls)})


def call(arguments, call_id=None, **fields) -> dict:
    shaped = {"type": "function", "function": {"name": TOOL, "arguments": arguments}} | fields
    return shaped if call_id is None else shaped | {"id": call_id}


def question(text: str) -> str:
    return json.dumps({"question": text})


def pairs(request: dict) -> list[tuple[list[str], list[str]]]:
    """For each assistant message with tool calls: (its call ids, the ids of the tool messages that follow it)."""
    found, messages = [], request["messages"]
    for at, message in enumerate(messages):
        if message["role"] == "assistant" and message.get("tool_calls"):
            answered = []
            for following in messages[at + 1 :]:
                if following["role"] != "tool":
                    break
                answered.append(following["tool_call_id"])
            found.append(([c["id"] for c in message["tool_calls"]], answered))
    return found


# Arguments


def test_arguments_sent_as_an_object_are_delegated(llm, slm):
    llm.push(native(call({"question": "What is 6*8?"}, "call_a")), ANSWER)
    record, _ = solve(llm, slm)
    assert record.error is None and record.correct
    [delegation] = record.delegations
    assert (delegation.question, delegation.error) == ("What is 6*8?", None)
    assert json.loads(delegation.arguments) == {"question": "What is 6*8?"}
    # The conversation sent back holds the arguments as JSON text, as servers require.
    assert llm.requests[1]["messages"][2]["tool_calls"][0]["function"]["arguments"] == delegation.arguments


@pytest.mark.parametrize(
    "arguments",
    [42, None, "", [1], True, {"q": "wrong field"}],
    ids=["number", "null", "empty", "array", "boolean", "wrong-field"],
)
def test_unusable_arguments_become_a_tool_error_the_llm_can_act_on(llm, slm, arguments):
    llm.push(native(call(arguments, "call_a")), ANSWER)
    record, cfg = solve(llm, slm)
    assert record.error is None and record.correct
    assert record.events == {"invalid_arguments": 1}
    assert slm.requests == []
    [tool_message] = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_message == {
        "role": "tool",
        "tool_call_id": "call_a",
        "content": cfg.tool_errors.invalid_arguments.format(argument="question"),
    }


def test_a_call_without_type_or_name_is_still_answered(llm, slm):
    no_type = {"id": "call_a", "function": {"name": TOOL, "arguments": question("What is 6*8?")}}
    no_name = {"id": "call_b", "type": "function", "function": {"arguments": question("What is 6*8?")}}
    llm.push(native(no_type, no_name), ANSWER)
    record, _ = solve(llm, slm)
    assert record.error is None and record.tool_calls == 2
    answered, malformed = record.delegations
    assert (answered.tool_call_id, answered.error) == ("call_a", None)
    assert (malformed.tool_call_id, malformed.error) == ("call_b", "malformed_call")
    assert 'no "name"' in malformed.result
    assert pairs(llm.requests[1]) == [(["call_a", "call_b"], ["call_a", "call_b"])]


# Ids


def test_missing_and_repeated_ids_get_unique_local_ids_with_tool_messages_paired(llm, slm):
    """Two calls without ids, then a server that numbers calls per turn (call_0 each time)."""
    llm.push(
        native(call(question("What is 6*8?")), call(question("What is 48+0?"), "")),
        native(call(question("What is 48*1?"), "call_0")),
        native(call(question("What is 48-0?"), "call_0"), call(question("What is 48/1?"), "call_0")),
        ANSWER,
    )
    record, _ = solve(llm, slm)
    assert record.error is None and record.correct and record.tool_calls == 5
    ids = [d.tool_call_id for d in record.delegations]
    assert len(set(ids)) == 5 and all(ids)
    assert [d.original_tool_call_id for d in record.delegations] == [None, "", "call_0", "call_0", "call_0"]
    assert ids[2] == "call_0"  # the first use of an id is kept
    assert record.events == {"tool_call_id_replaced": 4}
    # Every tool message answers the call it follows, in the LLM's order, with the id the conversation gave it.
    last = llm.requests[-1]
    assert [answered for _, answered in pairs(last)] == [ids[:2], ids[2:3], ids[3:]]
    assert all(calls == answered for calls, answered in pairs(last))
    answers = {m["tool_call_id"]: m["content"] for m in last["messages"] if m["role"] == "tool"}
    assert set(answers) == set(ids)


# Tool calls left in the content


HERMES_TURN = (
    'I will ask.\n<tool_call>\n{"name": "ask_math_assistant", "arguments": {"question": "What is 6*8?"}}\n</tool_call>'
)


def test_a_tool_call_written_in_content_is_delegated_not_scored(llm, slm):
    # The server's tool parser failed: the call is in the text, finish_reason "stop", no tool_calls.
    llm.push(Reply(content=HERMES_TURN), ANSWER)
    record, _ = solve(llm, slm)
    assert record.error is None and record.correct
    assert record.events == {"tool_call_in_content": 1}
    [delegation] = record.delegations
    assert (delegation.question, delegation.original_tool_call_id) == ("What is 6*8?", None)
    assert record.response == ANSWER.content
    # The conversation shows the call as a call, answered by a tool message with its id.
    assistant = llm.requests[1]["messages"][2]
    assert assistant["content"] == "I will ask." and assistant["tool_calls"][0]["id"] == delegation.tool_call_id
    assert pairs(llm.requests[1]) == [([delegation.tool_call_id], [delegation.tool_call_id])]


def test_only_tool_calls_in_content_until_the_end_is_not_an_answer(llm, slm):
    llm.default = Reply(content=HERMES_TURN.replace("I will ask.", "\\boxed{7}"))
    record, cfg = solve(llm, slm)
    # Every turn with tools was a call; the last turn, without tools, is the answer scored (and it says 7).
    assert record.events["tool_call_in_content"] == cfg.max_rounds and record.events["forced_final"] == 1
    assert record.tool_calls == cfg.max_rounds


# Missing usage


def test_missing_usage_is_recorded_as_missing_and_left_out_of_tokens_and_cost(llm, slm):
    llm.push(
        Reply(tool_calls=[{"name": TOOL, "arguments": question("What is 6*8?")}], usage="omit"),
        Reply(content="\\boxed{48}", prompt_tokens=300, completion_tokens=20),
    )
    slm.push(Reply(content="\\boxed{48}", usage=None))
    record, _ = solve(llm, slm)
    assert record.error is None and record.correct
    assert record.events == {"usage_missing": 2}
    llm_usage, slm_usage = record.usage["llm"], record.usage["slm"]
    assert (llm_usage.calls, llm_usage.usage_missing_calls, llm_usage.prompt_tokens, llm_usage.completion_tokens) == (
        2,
        1,
        300,
        20,
    )
    assert (slm_usage.calls, slm_usage.usage_missing_calls, slm_usage.tokens) == (1, 1, 0)
    [delegation] = record.delegations
    assert (delegation.slm_prompt_tokens, delegation.slm_completion_tokens) == (None, None)
    assert record.cost_usd == pytest.approx((300 * 2.5 + 20 * 10.0) / 1e6)


# Refused parameters


REFUSED_MAX_TOKENS = {
    "error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
}


def test_a_refused_parameter_ends_the_problem_with_a_config_error_not_a_record(llm, slm):
    llm.push(Reply(status=400, raw_body=REFUSED_MAX_TOKENS))
    with pytest.raises(
        ConfigError, match=r"^llm.max_tokens_param=max_tokens: .*set llm.max_tokens_param=max_completion_tokens$"
    ):
        solve(llm, slm)


def test_a_parameter_the_slm_server_refuses_is_a_config_error_too(llm, slm):
    llm.push(Reply(tool_calls=[{"name": TOOL, "arguments": question("What is 6*8?")}]), ANSWER)
    slm.push(Reply(status=400, raw_body=REFUSED_MAX_TOKENS))
    with pytest.raises(ConfigError, match=r"^slm.max_tokens_param=max_tokens: "):
        solve(llm, slm)


# Whole jobs


def reasoning_llm(body: dict) -> Reply:
    """gpt-5-mini as OpenAI answers it: reasoning and cached tokens in the usage details; refuses max_tokens."""
    if "max_tokens" in body or "temperature" in body:
        return Reply(status=400, raw_body=REFUSED_MAX_TOKENS)
    details = {"prompt_tokens_details": {"cached_tokens": 1024}, "completion_tokens_details": {"reasoning_tokens": 192}}
    if "tools" in body and not any(m["role"] == "tool" for m in body["messages"]):
        return Reply(
            tool_calls=[{"name": TOOL, "arguments": question("What is 2+2?")}],
            prompt_tokens=1500,
            completion_tokens=256,
            **details,
        )
    return Reply(content="\\boxed{4}", prompt_tokens=1600, completion_tokens=224, **details)


def job(tmp_path, monkeypatch, *overrides: str) -> tuple[dict, list]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = compose_config(["experiment=local", "samples=2", "tracking.traces=false", *overrides])
    summary = run_job(cfg, tmp_path, tmp_path / "outputs")
    return summary, read_records(tmp_path / "outputs" / SAMPLES_FILE)


def test_a_reasoning_model_as_the_llm(tmp_path, monkeypatch, llm, slm):
    llm.set_responder(reasoning_llm)
    summary, records = job(
        tmp_path,
        monkeypatch,
        "strategy=router",
        "llm=gpt-5-mini",
        f"llm.base_url={llm.base_url}",
        "llm.api_key_env=null",
        "slm=openai-compatible",
        f"slm.base_url={slm.base_url}",
    )
    assert all(r["max_completion_tokens"] == 8192 and "temperature" not in r for r in llm.requests)
    assert len(records) == 2 and all(r.error is None for r in records)
    usage = records[0].usage["llm"]
    assert (usage.calls, usage.reasoning_tokens, usage.provider_cached_prompt_tokens) == (2, 384, 2048)
    # gpt-5-mini: 0.25 input, 0.025 cached input, 2.00 output per 1M tokens; the SLM (scripted) is free.
    expected_usd = ((3100 - 2048) * 0.25 + 2048 * 0.025 + 480 * 2.00) / 1e6
    assert records[0].cost_usd == pytest.approx(expected_usd)
    assert summary["cost_usd"] == pytest.approx(2 * expected_usd)
    assert (summary["avg_llm_reasoning_tokens"], summary["avg_llm_provider_cached_prompt_tokens"]) == (384, 2048)
    # Sampled at the server's default temperature: nothing was cached, every call went out.
    assert len(llm.requests) == 4


def test_a_server_that_never_reports_usage(tmp_path, monkeypatch, llm):
    from mlflow import MlflowClient

    llm.default = Reply(content="So the total is \\boxed{7}.", usage="omit")
    summary, records = job(
        tmp_path, monkeypatch, "strategy=llm", "llm=openai-compatible", f"llm.base_url={llm.base_url}"
    )
    assert all(r.events == {"usage_missing": 1} and r.usage["llm"].usage_missing_calls == 1 for r in records)
    assert summary["n_usage_missing"] == summary["n_llm_usage_missing"] == 2
    assert math.isnan(summary["avg_llm_tokens"]) and summary["cost_usd"] == 0
    # MLflow keeps the unknown average as NaN, beside the count that explains it.
    run = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert math.isnan(run.data.metrics["avg_llm_tokens"]) and run.data.metrics["n_usage_missing"] == 2
