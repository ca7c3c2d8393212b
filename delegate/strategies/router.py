"""The router: the LLM reasons and delegates self-contained sub-questions to the SLM through a tool call."""

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from omegaconf import MISSING

from delegate.config.schema import PromptConfig, StrategyConfig
from delegate.data.problem import Problem
from delegate.errors import ConfigError, ModelCallError
from delegate.models.base import ChatRequest, ToolCall
from delegate.models.hermes import MALFORMED_CALL_NAME, malformed_call_detail
from delegate.models.metered import MeteredModel
from delegate.records import Delegation, SampleRecord
from delegate.scoring import Scorer, get_scorer
from delegate.scoring.base import without_reasoning
from delegate.strategies.observer import Observer
from delegate.strategies.prompting import render_messages
from delegate.strategies.registry import Attempt, register_strategy
from delegate.tasks import gather_or_cancel
from delegate.templates import fill
from delegate.tracking.traces import span


class ToolResult(str, Enum):
    answer = "answer"  # the SLM's final answer and last sentence: fewer LLM input tokens
    full = "full"  # the SLM's whole reasoning


class ToolChoice(str, Enum):
    """Sent with the LLM's turns that offer the tool, with OpenAI's meaning."""

    auto = "auto"  # the LLM decides whether to call the tool
    required = "required"  # it must call it (in-process: its reply starts with the opening of the call)
    none = "none"  # it must not call it (the tool is still described)


@dataclass
class ToolConfig:
    name: str = "ask_math_assistant"
    description: str = MISSING
    argument: str = "question"
    argument_description: str = MISSING
    # Sent as the argument's maxLength (some servers need it to stop generating) and enforced here.
    max_question_chars: int = 500


@dataclass
class ToolErrorMessages:
    """What the LLM is told when its tool call can't be answered; the {placeholders} named below are filled in."""

    unknown_tool: str = MISSING  # {name}: the tool it called; {tool}: the one it has
    malformed_call: str = MISSING  # {detail}: why a <tool_call> block naming no tool is not a call; {tool}, {argument}
    invalid_json: str = MISSING  # {detail}: the JSON error; {argument}
    invalid_arguments: str = MISSING  # {argument}
    empty_question: str = MISSING  # {argument}
    question_too_long: str = MISSING  # {argument}, {chars}, {max_chars}
    slm_error: str = MISSING  # {detail}: what failed (kind and HTTP status), never the server's message
    over_limit: str = MISSING  # {max_tool_calls}


@dataclass
class RouterConfig(StrategyConfig):
    llm_prompt: PromptConfig = field(default_factory=PromptConfig)
    slm_prompt: PromptConfig = field(default_factory=PromptConfig)
    tool: ToolConfig = field(default_factory=ToolConfig)
    tool_errors: ToolErrorMessages = field(default_factory=ToolErrorMessages)
    tool_result: ToolResult = ToolResult.answer
    # With tool_result=answer: {answer} and {last_sentence} are filled in.
    answer_template: str = "{answer}"
    # Stands in for {answer} when the SLM's reply has none.
    no_answer: str = MISSING
    # Sent (without tools) when the tool budget or the rounds run out.
    final_prompt: str = MISSING
    max_tool_calls: int = 6
    max_rounds: int = 4
    tool_choice: ToolChoice = ToolChoice.auto
    # The LLM turns `tool_choice` holds for, from the first (null: every turn); later turns are `auto`. `required` on
    # every turn leaves the LLM no turn to answer in until `max_rounds` runs out: 1 makes it delegate once, then decide.
    tool_choice_turns: Optional[int] = None


def tool_schema(tool: ToolConfig) -> dict[str, Any]:
    """The tool in OpenAI function format: one required string argument with a maxLength."""
    argument = {"type": "string", "description": tool.argument_description, "maxLength": tool.max_question_chars}
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": {"type": "object", "properties": {tool.argument: argument}, "required": [tool.argument]},
        },
    }


def last_sentence(text: str, max_chars: int = 300) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text.strip()) if s.strip()]
    return sentences[-1].strip()[:max_chars] if sentences else ""


def read_question(
    call: ToolCall, tool: ToolConfig, errors: ToolErrorMessages
) -> tuple[str | None, str | None, str | None]:
    """(question, None, None) for a usable call, else (None, event name, message for the LLM)."""
    if call.name == MALFORMED_CALL_NAME:
        detail = malformed_call_detail(call.arguments)
        return (
            None,
            "malformed_call",
            fill(errors.malformed_call, detail=detail, tool=tool.name, argument=tool.argument),
        )
    if call.name != tool.name:
        return None, "unknown_tool", fill(errors.unknown_tool, name=call.name, tool=tool.name)
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError as error:
        return None, "invalid_arguments", fill(errors.invalid_json, detail=error.msg, argument=tool.argument)
    question = arguments.get(tool.argument) if isinstance(arguments, dict) else None
    if not isinstance(question, str):
        return None, "invalid_arguments", fill(errors.invalid_arguments, argument=tool.argument)
    if not question.strip():
        return None, "empty_question", fill(errors.empty_question, argument=tool.argument)
    if len(question) > tool.max_question_chars:
        return (
            None,
            "question_too_long",
            fill(
                errors.question_too_long, argument=tool.argument, chars=len(question), max_chars=tool.max_question_chars
            ),
        )
    return question.strip(), None, None


def failure_summary(error: Exception) -> str:
    """What the LLM is told about a failed SLM call: its kind and HTTP status ('RateLimitError (HTTP 429)'), or the
    exception's class name. Never the server's message: it may echo a key, and it would go to another provider."""
    return error.summary if isinstance(error, ModelCallError) else type(error).__name__


class RouterAttempt:
    """One problem's delegation loop, with its counters."""

    def __init__(
        self, models: dict[str, MeteredModel], cfg: RouterConfig, observer: Observer, attempt: Attempt, scorer: Scorer
    ):
        self.llm, self.slm = models["llm"], models["slm"]
        self.cfg = cfg
        self.observer = observer
        self.attempt = attempt
        # The problem's scorer finds the answer in the SLM's reply (`tool_result=answer`), as it will in the LLM's.
        self.scorer = scorer

    def tool_result_text(self, slm_text: str) -> str:
        # The SLM's thinking never reaches the LLM as its result: its draft answers are not the answer.
        slm_text = without_reasoning(slm_text)
        if self.cfg.tool_result == ToolResult.full:
            return slm_text
        answer = self.scorer.extract(slm_text).answer
        return fill(
            self.cfg.answer_template,
            answer=answer if answer is not None else self.cfg.no_answer,
            last_sentence=last_sentence(slm_text),
        )

    async def delegate(self, call: ToolCall) -> Delegation:
        """Answer one tool call: the SLM's result, or an error the LLM can act on. Never raises for the model's mistakes."""
        with span(self.cfg.tool.name, "TOOL", inputs={"name": call.name, "arguments": call.arguments}) as live:
            question, event, result = read_question(call, self.cfg.tool, self.cfg.tool_errors)
            entry = Delegation(
                tool_call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                result="",
                question=question,
                original_tool_call_id=call.original_id,
            )
            if question is not None:
                self.observer.delegating(call.id, question)
                messages = render_messages(self.cfg.slm_prompt, question)
                try:
                    slm_response = await self.slm.chat(
                        ChatRequest(messages), on_text=self.observer.slm_text_sink(call.id)
                    )
                except ConfigError:
                    raise
                except Exception as error:  # noqa: BLE001 - an SLM failure is reported to the LLM, not fatal
                    event = "slm_error"
                    result = fill(self.cfg.tool_errors.slm_error, detail=failure_summary(error))
                    # The LLM answers on without this sub-answer: the record says the result was degraded.
                    self.attempt.absorb_failure(self.slm.role, error)
                else:
                    result = self.tool_result_text(slm_response.text)
                    entry.slm_output = slm_response.text
                    entry.slm_prompt_tokens = slm_response.prompt_tokens
                    entry.slm_completion_tokens = slm_response.completion_tokens
                    entry.slm_latency_s = slm_response.latency_s
                    entry.slm_cache_hit = slm_response.cache_hit
            live.set_outputs(result)
            live.set_attributes({"error": event or ""})
            if event:
                live.set_error(f"{event}: {result}")
        self.observer.tool_result(call.id, result)
        entry.result, entry.error = result, event
        return entry

    def refuse(self, call: ToolCall) -> Delegation:
        """A call past `max_tool_calls`: answered with an error, never sent to the SLM."""
        result = fill(self.cfg.tool_errors.over_limit, max_tool_calls=self.cfg.max_tool_calls)
        self.observer.tool_result(call.id, result)
        return Delegation(
            tool_call_id=call.id,
            name=call.name,
            arguments=call.arguments,
            result=result,
            error="over_limit",
            original_tool_call_id=call.original_id,
        )

    async def run(self, question: str) -> None:
        attempt = self.attempt
        # The transcript is the conversation itself, so a failure part-way leaves it as far as it got.
        messages = attempt.transcript
        messages.extend(render_messages(self.cfg.llm_prompt, question))
        tools = [tool_schema(self.cfg.tool)]
        for turn in range(self.cfg.max_rounds):
            response = await self.llm_turn(messages, tools, self.tool_choice(turn))
            messages.append(response.as_message())
            if not response.tool_calls:
                return self.finish(response.text)
            budget = max(0, self.cfg.max_tool_calls - attempt.tool_calls)
            allowed, refused = response.tool_calls[:budget], response.tool_calls[budget:]
            # Several calls in one turn run concurrently; their answers go back in the LLM's order.
            entries = [*await gather_or_cancel(self.delegate(call) for call in allowed), *map(self.refuse, refused)]
            # Recorded in the LLM's order, like the tool messages, whatever order the SLM finished in.
            attempt.delegations.extend(entries)
            attempt.events.update(entry.error for entry in entries if entry.error)
            attempt.tool_calls += len(response.tool_calls)
            messages.extend({"role": "tool", "tool_call_id": e.tool_call_id, "content": e.result} for e in entries)
            if attempt.tool_calls >= self.cfg.max_tool_calls:
                break
        # Out of rounds or tool budget: one last turn, without tools, for the final answer.
        attempt.events["forced_final"] += 1
        messages.append({"role": "user", "content": self.cfg.final_prompt})
        response = await self.llm_turn(messages)
        messages.append(response.as_message())
        self.finish(response.text)

    def tool_choice(self, turn: int) -> ToolChoice:
        """The `tool_choice` of the LLM's turn number `turn` (0 = the first)."""
        turns = self.cfg.tool_choice_turns
        return self.cfg.tool_choice if turns is None or turn < turns else ToolChoice.auto

    async def llm_turn(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: ToolChoice = ToolChoice.auto,
    ):
        # A copy: the conversation grows after this call, and the call's trace keeps what it was sent.
        response = await self.llm.chat(
            ChatRequest(list(messages), tools, ToolChoice(tool_choice).value), on_text=self.observer.llm_text_sink()
        )
        if response.finish_reason == "length":
            # Cut off at max_tokens: what follows is scored as written, so say so in the record.
            self.attempt.events["truncated"] += 1
        self.observer.llm_replied(response)
        return response

    def finish(self, text: str) -> None:
        self.attempt.response = text
        self.observer.final_answer(text)


def every_slm_call_failed(records: list[SampleRecord]) -> str | None:
    """The router's failed run: the LLM asked, and every one of its SLM calls failed (its answers are the LLM's
    alone, though no problem errored)."""
    delegations = [d for r in records for d in r.delegations]
    slm_failures = [d for d in delegations if d.error == "slm_error"]
    if not slm_failures or len(slm_failures) != len(delegations):
        return None
    first = next(failure for r in records for failure in r.failures)
    return f"every one of the {len(delegations)} SLM calls failed; the first: {first}"


@register_strategy("router", roles=("llm", "slm"), schema=RouterConfig, run_failure=every_slm_call_failed)
async def solve_with_router(
    problem: Problem, models: dict[str, MeteredModel], cfg: RouterConfig, observer: Observer, attempt: Attempt
) -> None:
    await RouterAttempt(models, cfg, observer, attempt, get_scorer(problem.scorer)).run(problem.question)
