"""The router's `tool_choice`: what each LLM turn is sent (scripted servers), how the presets compose it, and a real
delegation by in-process SmolLM2 when the first turn must call the tool."""

import json

import pytest

from delegate.compose import compose_config
from delegate.strategies.router import ToolChoice
from delegate.testing.scripted_server import Reply
from tests.support.router import solve, solve_composed

TOOL = "ask_math_assistant"


def always_delegate(body: dict) -> Reply:
    """An LLM that calls the tool whenever it is offered, and answers only when it is not."""
    if "tools" in body:
        return Reply(tool_calls=[{"name": TOOL, "arguments": json.dumps({"question": "What is 6 * 8?"})}])
    return Reply(content="\\boxed{48}")


def sent_tool_choices(llm) -> list[str | None]:
    """The `tool_choice` of each request the LLM received, in order (None: not sent)."""
    return [request.get("tool_choice") for request in llm.requests]


def test_required_for_the_first_turn_only_then_auto(llm, slm):
    llm.push(
        Reply(tool_calls=[{"name": TOOL, "arguments": json.dumps({"question": "What is 6 * 8?"})}]),
        Reply(content="8 boxes of 6: \\boxed{48}"),
    )
    slm.push(Reply(content="\\boxed{48}"))
    record, cfg = solve(llm, slm, "strategy.tool_choice=required", "strategy.tool_choice_turns=1")

    assert (cfg.tool_choice, cfg.tool_choice_turns) == (ToolChoice.required, 1)
    assert record.correct is True and record.tool_calls == 1
    assert sent_tool_choices(llm) == ["required", "auto"]
    # The SLM is asked plainly: no tools, so no tool_choice.
    assert [("tools" in r, "tool_choice" in r) for r in slm.requests] == [(False, False)]


def test_required_on_every_turn_until_the_rounds_run_out_then_the_final_turn_has_no_tools(llm, slm):
    llm.set_responder(always_delegate)
    slm.default = Reply(content="\\boxed{48}")
    record, _ = solve(llm, slm, "strategy.tool_choice=required", "strategy.max_rounds=2")

    assert sent_tool_choices(llm) == ["required", "required", None]
    assert "tools" not in llm.requests[-1]
    assert record.events == {"forced_final": 1} and record.tool_calls == 2


def test_none_is_sent_on_every_turn_with_the_tool_still_described(llm, slm):
    llm.push(Reply(content="6 * 8 = \\boxed{48}"))
    record, _ = solve(llm, slm, "strategy.tool_choice=none")

    assert sent_tool_choices(llm) == ["none"]
    assert llm.requests[0]["tools"][0]["function"]["name"] == TOOL
    assert record.correct is True and record.tool_calls == 0 and slm.requests == []


def test_auto_is_the_default_and_what_every_turn_sends(llm, slm):
    llm.push(
        Reply(tool_calls=[{"name": TOOL, "arguments": json.dumps({"question": "What is 6 * 8?"})}]),
        Reply(content="\\boxed{48}"),
    )
    slm.push(Reply(content="\\boxed{48}"))
    _, cfg = solve(llm, slm)

    assert (cfg.tool_choice, cfg.tool_choice_turns) == (ToolChoice.auto, None)
    assert sent_tool_choices(llm) == ["auto", "auto"]


# How the presets compose it


@pytest.mark.parametrize("experiment", ["local", "compare-local"])
def test_the_offline_presets_require_the_first_call_of_the_in_process_llm_and_compose_for_every_strategy(experiment):
    router = compose_config([f"experiment={experiment}", "strategy=router"]).strategy
    assert (router.tool_choice, router.tool_choice_turns) == (ToolChoice.required, 1)
    for strategy in ("llm", "slm"):
        solo = compose_config([f"experiment={experiment}", f"strategy={strategy}"]).strategy
        assert solo.name == strategy and "tool_choice" not in solo
    # The command line still wins.
    assert (
        compose_config([f"experiment={experiment}", "strategy.tool_choice=auto"]).strategy.tool_choice
        == ToolChoice.auto
    )


def test_another_llm_leaves_the_router_on_auto():
    for overrides in (["experiment=local", "llm=openai-compatible"], ["strategy=router"]):
        router = compose_config(overrides).strategy
        assert (router.tool_choice, router.tool_choice_turns) == (ToolChoice.auto, None), overrides


# In-process SmolLM2, for real


@pytest.mark.slow
def test_in_process_smollm2_delegates_when_its_first_turn_must_call_the_tool():
    # Few tokens: the call's opening is written for the model, so a short completion already holds a sub-question.
    record, router_cfg = solve_composed(
        ["experiment=local", "llm.max_new_tokens=32", "slm.max_new_tokens=12", "strategy.max_rounds=1"]
    )
    assert router_cfg.tool_choice == ToolChoice.required
    assert record.error is None
    assert record.tool_calls >= 1
    asked = [d for d in record.delegations if d.question]
    assert asked, [d.arguments for d in record.delegations]
    # The SLM really answered the sub-question the LLM wrote.
    assert all(d.slm_completion_tokens and d.slm_completion_tokens > 0 for d in asked)
    assert record.usage["slm"].calls == len(asked)
