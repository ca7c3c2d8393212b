"""The router loop with the real config and the real SDK against two scripted servers (LLM and SLM) on loopback."""

import json
import threading
from functools import cache
from statistics import mean

import pytest

from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.metrics import summarize
from delegate.strategies.router import RouterConfig
from delegate.testing.scripted_server import Reply, ScriptedServer
from tests.support.cli import logged_records, mlflow_runs, run_eval
from tests.support.router import PROBLEM, solve

TOOL = "ask_math_assistant"


def ask(question: str, call_id: str | None = None, name: str = TOOL) -> dict:
    """A scripted tool call asking the SLM `question`."""
    call = {"name": name, "arguments": json.dumps({"question": question})}
    return call | {"id": call_id} if call_id else call


def tool_messages(request: dict) -> list[dict]:
    return [m for m in request["messages"] if m["role"] == "tool"]


def slm_questions(slm: ScriptedServer) -> list[str]:
    return [r["messages"][-1]["content"] for r in slm.requests]


def always_delegate(body: dict) -> Reply:
    """An LLM that asks for the tool whenever it is offered, and answers only when it is not."""
    if "tools" in body:
        return Reply(tool_calls=[ask(f"What is {len(body['messages'])} * 2?")])
    return Reply(content="Forced to answer: \\boxed{48}")


# One delegation, end to end


def test_one_delegation_goes_to_the_slm_and_its_answer_back_to_the_llm(llm, slm):
    llm.push(Reply(tool_calls=[ask("What is 6*8?", "call_a")]), Reply(content="8 boxes of 6: \\boxed{48}"))
    slm.push(Reply(content="6*8 = 48. So the answer is \\boxed{48}."))
    record, cfg = solve(llm, slm)

    assert record.error is None
    assert record.correct is True and record.extracted == "48"
    assert record.tool_calls == 1
    assert record.events == {}
    assert record.degraded is False and record.failures == []

    # The SLM saw only the sub-question, under its own system prompt, and no tools.
    [slm_request] = slm.requests
    assert slm_request["messages"] == [
        {"role": "system", "content": cfg.slm_prompt.system},
        {"role": "user", "content": "What is 6*8?"},
    ]
    assert "tools" not in slm_request

    # The first LLM turn offers the tool, with the config's schema.
    first, second = llm.requests
    assert first["messages"] == [
        {"role": "system", "content": cfg.llm_prompt.system},
        {"role": "user", "content": PROBLEM.question},
    ]
    [tool] = first["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == cfg.tool.name == TOOL
    assert tool["function"]["description"] == cfg.tool.description
    parameters = tool["function"]["parameters"]
    assert parameters["required"] == [cfg.tool.argument]
    argument = parameters["properties"][cfg.tool.argument]
    assert argument["type"] == "string"
    assert argument["maxLength"] == cfg.tool.max_question_chars == 500
    assert first["tool_choice"] == "auto"

    # The second turn carries the LLM's call and the SLM's answer through answer_template.
    assert second["messages"][:2] == first["messages"]
    assistant = second["messages"][2]
    assert assistant["role"] == "assistant"
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == [("call_a", TOOL)]
    expected_result = "Answer: 48. (Last step: So the answer is \\boxed{48}.)"
    assert cfg.answer_template == "Answer: {answer}. (Last step: {last_sentence})"
    assert tool_messages(second) == [{"role": "tool", "tool_call_id": "call_a", "content": expected_result}]

    [delegation] = record.delegations
    assert delegation.tool_call_id == "call_a"
    assert delegation.question == "What is 6*8?"
    assert delegation.slm_output == "6*8 = 48. So the answer is \\boxed{48}."
    assert (delegation.slm_prompt_tokens, delegation.slm_completion_tokens) == (10, 5)
    assert delegation.slm_latency_s > 0
    assert delegation.result == expected_result
    assert delegation.error is None

    # The transcript is every message of the conversation, the final answer last.
    assert record.transcript == second["messages"] + [{"role": "assistant", "content": "8 boxes of 6: \\boxed{48}"}]
    assert [m["role"] for m in record.transcript] == ["system", "user", "assistant", "tool", "assistant"]


def test_tool_result_full_sends_the_slms_whole_text(llm, slm):
    slm_text = "First, 6*8 means six eights.\nThat is 48.\nSo the answer is \\boxed{48}."
    llm.push(Reply(tool_calls=[ask("What is 6*8?", "call_a")]), Reply(content="\\boxed{48}"))
    slm.push(Reply(content=slm_text))
    record, _ = solve(llm, slm, "strategy.tool_result=full")
    assert tool_messages(llm.requests[1]) == [{"role": "tool", "tool_call_id": "call_a", "content": slm_text}]
    assert record.delegations[0].result == slm_text


def test_answer_template_says_when_the_slm_gave_no_final_answer(llm, slm):
    llm.push(Reply(tool_calls=[ask("What is 6*8?", "call_a")]), Reply(content="\\boxed{48}"))
    slm.push(Reply(content="I am not sure about this one"))
    solve(llm, slm)
    [message] = tool_messages(llm.requests[1])
    assert message["content"].startswith("Answer: (no final answer found).")


# Accounting


def test_tokens_calls_and_cost_are_the_sums_of_what_the_servers_reported(llm, slm):
    llm.push(
        Reply(tool_calls=[ask("What is 6*8?")], prompt_tokens=101, completion_tokens=17),
        Reply(tool_calls=[ask("What is 48+0?"), ask("What is 48*1?")], prompt_tokens=257, completion_tokens=29),
        Reply(content="\\boxed{48}", prompt_tokens=389, completion_tokens=41),
    )
    slm.push(
        Reply(content="\\boxed{48}", prompt_tokens=31, completion_tokens=44),
        Reply(content="\\boxed{48}", prompt_tokens=37, completion_tokens=53),
        Reply(content="\\boxed{48}", prompt_tokens=43, completion_tokens=61),
    )
    record, _ = solve(llm, slm)
    assert record.error is None
    assert record.tool_calls == 3
    llm_prompt, llm_completion = 101 + 257 + 389, 17 + 29 + 41
    slm_prompt, slm_completion = 31 + 37 + 43, 44 + 53 + 61
    assert {k: getattr(record.usage["llm"], k) for k in ("calls", "prompt_tokens", "completion_tokens", "tokens")} == {
        "calls": 3,
        "prompt_tokens": llm_prompt,
        "completion_tokens": llm_completion,
        "tokens": llm_prompt + llm_completion,
    }
    assert {k: getattr(record.usage["slm"], k) for k in ("calls", "prompt_tokens", "completion_tokens", "tokens")} == {
        "calls": 3,
        "prompt_tokens": slm_prompt,
        "completion_tokens": slm_completion,
        "tokens": slm_prompt + slm_completion,
    }
    assert record.usage["slm"].latency_s == pytest.approx(sum(d.slm_latency_s for d in record.delegations))
    assert sum(d.slm_prompt_tokens for d in record.delegations) == slm_prompt
    assert record.cost_usd == pytest.approx((llm_prompt * 2.5 + llm_completion * 10.0) / 1e6)
    assert len(llm.requests) == 3 and len(slm.requests) == 3


# Parallel calls


def test_calls_in_one_turn_run_concurrently_and_answer_in_the_llms_order(llm, slm):
    # The first call is the slower one, so finishing order is the reverse of the LLM's order.
    answers = {"What is 6*8?": ("48", 0.6), "What is 7+5?": ("12", 0.4)}
    slm.set_responder(
        lambda body: Reply(
            content=f"\\boxed{{{answers[body['messages'][-1]['content']][0]}}}",
            delay_s=answers[body["messages"][-1]["content"]][1],
        )
    )
    llm.push(
        Reply(tool_calls=[ask("What is 6*8?", "call_x"), ask("What is 7+5?", "call_y")]),
        Reply(content="\\boxed{48}"),
    )
    record, _ = solve(llm, slm)
    assert sorted(slm_questions(slm)) == ["What is 6*8?", "What is 7+5?"]
    # Run one after the other, the SLM alone would take 1.0 s.
    assert record.latency_s < 0.9
    assert [(m["tool_call_id"], m["content"].split(".")[0]) for m in tool_messages(llm.requests[1])] == [
        ("call_x", "Answer: 48"),
        ("call_y", "Answer: 12"),
    ]
    assert sorted(d.tool_call_id for d in record.delegations) == ["call_x", "call_y"]
    assert record.tool_calls == 2 and record.correct


# The LLM's mistakes become error messages it can act on


@pytest.mark.parametrize(
    ("call", "event", "overrides"),
    [
        ({"name": TOOL, "arguments": "{not json"}, "invalid_arguments", ()),
        ({"name": TOOL, "arguments": '["What is 6*8?"]'}, "invalid_arguments", ()),
        ({"name": TOOL, "arguments": '{"query": "What is 6*8?"}'}, "invalid_arguments", ()),
        (ask("What is 6*8?", name="calculator"), "unknown_tool", ()),
        (ask("   "), "empty_question", ()),
        (ask("What is 6*8? Please be careful."), "question_too_long", ("strategy.tool.max_question_chars=20",)),
    ],
    ids=["not-json", "not-an-object", "missing-field", "unknown-tool", "empty", "too-long"],
)
def test_bad_tool_call_gets_an_error_message_and_the_loop_goes_on(llm, slm, call, event, overrides):
    llm.push(Reply(tool_calls=[call | {"id": "call_bad"}]), Reply(content="I'll do it myself: \\boxed{48}"))
    record, cfg = solve(llm, slm, *overrides)
    assert slm.requests == []
    [message] = tool_messages(llm.requests[1])
    assert message["tool_call_id"] == "call_bad"
    assert message["content"].startswith("Error:")
    assert record.events == {event: 1}
    assert record.error is None
    assert record.correct is True
    assert record.usage["slm"].calls == 0
    [delegation] = record.delegations
    assert delegation.error == event and delegation.result == message["content"]
    assert not delegation.answered
    assert llm.requests[0]["tools"][0]["function"]["parameters"]["properties"]["question"]["maxLength"] == (
        cfg.tool.max_question_chars
    )


def test_error_messages_come_from_the_config(llm, slm):
    llm.push(Reply(tool_calls=[ask("What is 6*8?", name="calculator")]), Reply(content="\\boxed{48}"))
    solve(llm, slm, "strategy.tool_errors.unknown_tool='No {name} here; use {tool}. {braces} stay.'")
    [message] = tool_messages(llm.requests[1])
    assert message["content"] == "No calculator here; use ask_math_assistant. {braces} stay."


def test_question_at_the_length_limit_is_accepted(llm, slm):
    llm.push(Reply(tool_calls=[ask("x" * 20)]), Reply(content="\\boxed{48}"))
    slm.push(Reply(content="\\boxed{1}"))
    record, _ = solve(llm, slm, "strategy.tool.max_question_chars=20")
    assert slm_questions(slm) == ["x" * 20]
    assert record.events == {}


# Body of the SLM server's error: what the LLM's provider must never see.
SLM_ERROR_BODY = "backend down; it echoed CANARY-IN-THE-BODY"


def test_an_slm_failure_is_told_to_the_llm_by_kind_and_status_and_degrades_the_record(llm, slm):
    llm.push(Reply(tool_calls=[ask("What is 6*8?", "call_a")]), Reply(content="Then by hand: \\boxed{48}"))
    slm.push(Reply(status=500, content=SLM_ERROR_BODY))
    record, cfg = solve(llm, slm, "slm.max_retries=0")
    assert len(slm.requests) == 1
    [message] = tool_messages(llm.requests[1])
    assert message["tool_call_id"] == "call_a"
    # What failed, never the server's words: they may echo a key, and would go to another provider.
    assert message["content"] == cfg.tool_errors.slm_error.format(detail="InternalServerError (HTTP 500)")
    assert "backend down" not in json.dumps(llm.requests) and "CANARY" not in json.dumps(llm.requests)
    assert record.delegations[0].error == "slm_error" and record.delegations[0].result == message["content"]
    # The LLM answered alone, as the router allows; the record says the SLM's failure shaped the result.
    assert record.events == {"slm_error": 1}
    assert record.error is None and record.correct is True
    assert record.response == "Then by hand: \\boxed{48}"
    assert record.degraded is True
    [failure] = record.failures
    assert failure.startswith("slm: InternalServerError (HTTP 500)")


def test_a_degraded_problem_counts_apart_and_stays_out_of_the_clean_accuracy(llm, slm):
    # A healthy problem answered wrong, then a degraded one answered right by the LLM alone.
    llm.push(Reply(tool_calls=[ask("What is 6*8?")]), Reply(content="\\boxed{47}"))
    slm.push(Reply(content="\\boxed{48}"))
    healthy, _ = solve(llm, slm, "slm.max_retries=0")
    llm.push(Reply(tool_calls=[ask("What is 6*8?")]), Reply(content="\\boxed{48}"))
    slm.push(Reply(status=500, content=SLM_ERROR_BODY))
    degraded, _ = solve(llm, slm, "slm.max_retries=0")
    assert (healthy.degraded, healthy.failures, degraded.degraded) == (False, [], True)
    metrics = summarize([healthy, degraded])
    assert (metrics["n_degraded"], metrics["n_errors"]) == (1, 0)
    assert (metrics["accuracy"], metrics["accuracy_clean"]) == (0.5, 0.0)


def test_an_slm_failure_before_an_llm_failure_is_listed_but_the_problem_errored_not_degraded(llm, slm):
    llm.push(Reply(tool_calls=[ask("What is 6*8?")]), Reply(status=500, content="llm down"))
    slm.push(Reply(status=500, content=SLM_ERROR_BODY))
    record, _ = solve(llm, slm, "slm.max_retries=0", "llm.max_retries=0")
    assert record.error.startswith("InternalServerError") and not record.correct
    assert record.degraded is False
    assert [f.split(":")[0] for f in record.failures] == ["slm"]


# Cut-offs


def assert_forced_final(llm: ScriptedServer, cfg: RouterConfig) -> None:
    """The last LLM turn offers no tools and ends with final_prompt."""
    last = llm.requests[-1]
    assert "tools" not in last and "tool_choice" not in last
    assert last["messages"][-1] == {"role": "user", "content": cfg.final_prompt}
    assert all("tools" in request for request in llm.requests[:-1])


def test_max_tool_calls_forces_a_final_answer_without_tools(llm, slm):
    llm.set_responder(always_delegate)
    slm.default = Reply(content="\\boxed{2}")
    record, cfg = solve(llm, slm, "strategy.max_tool_calls=2")
    assert len(slm.requests) == 2
    assert len(llm.requests) == 3
    assert record.events == {"forced_final": 1}
    assert record.tool_calls == 2
    assert_forced_final(llm, cfg)
    assert record.response == "Forced to answer: \\boxed{48}" and record.correct


def test_calls_over_the_limit_in_one_turn_are_refused(llm, slm):
    llm.push(
        Reply(tool_calls=[ask("What is 1+1?", "call_1"), ask("What is 2+2?", "call_2"), ask("What is 3+3?", "call_3")]),
        Reply(content="\\boxed{48}"),
    )
    slm.default = Reply(content="\\boxed{2}")
    record, cfg = solve(llm, slm, "strategy.max_tool_calls=2")
    assert sorted(slm_questions(slm)) == ["What is 1+1?", "What is 2+2?"]
    assert record.events == {"over_limit": 1, "forced_final": 1}
    messages = tool_messages(llm.requests[1])
    assert [m["tool_call_id"] for m in messages] == ["call_1", "call_2", "call_3"]
    assert messages[0]["content"].startswith("Answer: 2.") and messages[1]["content"].startswith("Answer: 2.")
    assert messages[2]["content"].startswith("Error:") and "limit of 2 tool calls is reached" in messages[2]["content"]
    assert len(llm.requests) == 2
    assert_forced_final(llm, cfg)
    assert len([d for d in record.delegations if d.answered]) == 2
    # One delegation entry per tool call, in the LLM's order, the refused one included.
    assert [(d.tool_call_id, d.error) for d in record.delegations] == [
        ("call_1", None),
        ("call_2", None),
        ("call_3", "over_limit"),
    ]
    # tool_calls counts every call the LLM asked for, the refused one included.
    assert record.tool_calls == 3
    assert record.correct


@pytest.mark.parametrize("max_rounds", [1, 3])
def test_max_rounds_forces_a_final_answer_without_tools(llm, slm, max_rounds):
    # Rounds, not calls: one delegation per round, then the forced final turn.
    llm.set_responder(always_delegate)
    slm.default = Reply(content="\\boxed{2}")
    record, cfg = solve(llm, slm, f"strategy.max_rounds={max_rounds}")
    assert len(slm.requests) == max_rounds
    assert len(llm.requests) == max_rounds + 1
    assert record.events == {"forced_final": 1}
    assert record.tool_calls == max_rounds
    assert_forced_final(llm, cfg)
    assert record.correct


# End to end: delegate-eval in a subprocess


@cache
def sample_golds() -> dict[str, str]:
    return {p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)}


class UsageLog:
    """A responder's replies, remembered so the test can add up what the server reported."""

    def __init__(self):
        self._lock = threading.Lock()
        self.replies: list[Reply] = []

    def keep(self, reply: Reply) -> Reply:
        with self._lock:
            self.replies.append(reply)
        return reply

    def total(self, field: str) -> int:
        return sum(getattr(r, field) for r in self.replies)


def test_router_job_logs_metrics_that_add_up_and_traces(tmp_path, llm, slm):
    # Loaded here, once: loading in two server threads at once can fail (a tqdm race), and the SDK would retry.
    golds = sample_golds()
    llm_log, slm_log = UsageLog(), UsageLog()

    def llm_responder(body: dict) -> Reply:
        # messages[1] is the problem; even golds are delegated, odd ones answered directly.
        gold = golds[body["messages"][1]["content"]]
        if body["messages"][-1]["role"] == "user" and int(gold) % 2 == 0:
            call = ask(f"What is {gold} + 0?")
            return llm_log.keep(
                Reply(tool_calls=[call], prompt_tokens=100 + len(gold), completion_tokens=int(gold) % 7 + 3)
            )
        return llm_log.keep(
            Reply(content=f"\\boxed{{{gold}}}", prompt_tokens=200 + int(gold) % 13, completion_tokens=9)
        )

    def slm_responder(body: dict) -> Reply:
        question = body["messages"][-1]["content"]
        gold = question.removeprefix("What is ").removesuffix(" + 0?")
        return slm_log.keep(
            Reply(
                content=f"{gold} + 0 = {gold}. \\boxed{{{gold}}}",
                prompt_tokens=len(question),
                completion_tokens=int(gold) % 5 + 11,
            )
        )

    llm.set_responder(llm_responder)
    slm.set_responder(slm_responder)
    done = run_eval(
        tmp_path,
        "experiment=local",
        "strategy=router",
        "llm=openai-compatible",
        f"llm.base_url={llm.base_url}",
        "slm=openai-compatible",
        f"slm.base_url={slm.base_url}",
        "llm.price_input_usd_per_1m=2.5",
        "llm.price_output_usd_per_1m=10",
        "samples=3",
        "seed=5",
        timeout_s=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    client, [run] = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"
    records = logged_records(client, run, tmp_path / "download")
    assert len(records) == 3 and all(r.correct and r.error is None for r in records)
    delegated = [int(r.gold) % 2 == 0 for r in records]
    # The seed draws both kinds of problem, so delegation_rate is neither 0 nor 1.
    assert 0 < sum(delegated) < 3
    assert [r.tool_calls for r in records] == [int(d) for d in delegated]
    assert len(slm.requests) == sum(delegated), done.stderr[-3000:]
    assert len(llm.requests) == 3 + sum(delegated), done.stderr[-3000:]

    metrics = run.data.metrics
    assert metrics["avg_llm_prompt_tokens"] == llm_log.total("prompt_tokens") / 3
    assert metrics["avg_llm_completion_tokens"] == llm_log.total("completion_tokens") / 3
    assert metrics["avg_slm_prompt_tokens"] == slm_log.total("prompt_tokens") / 3
    assert metrics["avg_slm_completion_tokens"] == slm_log.total("completion_tokens") / 3
    assert metrics["avg_tool_calls"] == sum(delegated) / 3
    assert metrics["delegation_rate"] == sum(delegated) / 3
    assert metrics["avg_slm_latency_s"] == mean(r.usage["slm"].latency_s for r in records)
    assert all((r.usage["slm"].latency_s > 0) == d for r, d in zip(records, delegated))
    assert metrics["cost_usd"] == pytest.approx(
        (llm_log.total("prompt_tokens") * 2.5 + llm_log.total("completion_tokens") * 10) / 1e6
    )

    traces = client.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id)
    roots = {s.name: t for t in traces for s in t.data.spans if s.parent_id is None}
    assert sorted(roots) == sorted(f"problem-{r.id}" for r in records)
    # Each trace's token total is what the two models reported for that problem.
    for r in records:
        assert (
            roots[f"problem-{r.id}"].info.token_usage["total_tokens"] == r.usage["llm"].tokens + r.usage["slm"].tokens
        )
    tool_spans = [s for t in traces for s in t.data.spans if s.span_type == "TOOL"]
    assert len(tool_spans) == sum(delegated)


def test_a_turn_cut_off_at_max_tokens_is_counted(llm, slm):
    llm.push(Reply(content="The answer is \\boxed{4", finish_reason="length"))
    record, _ = solve(llm, slm)
    assert record.events == {"truncated": 1}
    assert len(slm.requests) == 0


def test_an_llm_failure_part_way_keeps_what_happened_before_it(llm, slm):
    llm.push(
        Reply(
            tool_calls=[{"name": "ask_math_assistant", "arguments": '{"question": "What is 6*8?"}'}], prompt_tokens=50
        ),
        Reply(status=500, content="llm down"),
    )
    slm.default = Reply(content="\\boxed{48}", prompt_tokens=20, completion_tokens=6)
    record, _ = solve(llm, slm, "llm.max_retries=0")
    assert record.error.startswith("InternalServerError")
    assert not record.correct
    assert record.tool_calls == 1
    assert [d.question for d in record.delegations] == ["What is 6*8?"]
    assert [m["role"] for m in record.transcript] == ["system", "user", "assistant", "tool"]
    assert (record.usage["llm"].calls, record.usage["llm"].prompt_tokens) == (1, 50)
    assert (record.usage["slm"].calls, record.usage["slm"].completion_tokens) == (1, 6)
