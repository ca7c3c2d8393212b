"""`delegate-demo "question" [overrides]`: answer live with the router (or any strategy), showing every step."""

import asyncio
import json
import re
import sys

from hydra.errors import HydraException
from omegaconf import DictConfig

from delegate.cli import config_error_line, default_options, help_text, quiet_libraries, wants_help
from delegate.compose import compose_config
from delegate.data import Split
from delegate.data.problem import Problem
from delegate.errors import ConfigError, ModelCallError
from delegate.evaluation import Evaluation
from delegate.models import ChatResponse
from delegate.models.base import TextSink
from delegate.records import SampleRecord
from delegate.scoring import extract_answer
from delegate.strategies.observer import Observer

# `key=value`, `+key=value`, `group@pkg=option`: everything else on the command line is the question.
OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.@/-]*=")
# `--verbose`, `-x`: never part of a question (`-3 apples` is).
FLAG = re.compile(r"^--?[A-Za-z]")
QUIT_WORDS = {"", "q", "quit", "exit"}
# The demo is about delegation: the router unless the command line picks another strategy.
DEFAULT_STRATEGY = "router"

SUMMARY = (
    "ask a math question and watch the answer being made, live: the LLM's text as it streams, each sub-question "
    "it delegates to the SLM, the SLM's reasoning token by token, what goes back, the final answer, and a tally "
    "of calls, tokens, latency and cost per model. The router unless you pick another strategy; the same config "
    "tree and settings as delegate-eval."
)
USAGE = [
    'delegate-demo "question" [group=option ...] [key=value ...]   answer one question, then exit',
    "delegate-demo [group=option ...] [key=value ...]              ask again and again (empty line or quit stops)",
]
EXAMPLES = [
    (
        'delegate-demo "A baker fills 8 boxes with 6 muffins each. How many muffins?" llm=local slm=local',
        "offline: SmolLM2 in-process in both roles (it rarely calls the tool)",
    ),
    (
        "delegate-demo llm=openai-compatible llm.base_url=http://127.0.0.1:8765/v1 llm.model=smollm2 slm=local",
        "an LLM served by llama.cpp (scripts/serve_llama_cpp.py), which does call the tool; asks for questions",
    ),
    ('delegate-demo "What is 15% of 80?" strategy=llm llm=gpt-4o-mini', "one model alone, no delegation"),
]


def split_arguments(arguments: list[str]) -> tuple[str, list[str]]:
    """(question, Hydra overrides): overrides look like `key=value`; the rest, joined, is the question."""
    overrides = [a for a in arguments if OVERRIDE.match(a)]
    question = " ".join(a for a in arguments if a not in overrides).strip()
    return question, overrides


class Style:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text


def counted(n: int, noun: str) -> str:
    """`1 call`, `2 calls`: the count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def readable_arguments(arguments: str) -> str:
    """Tool-call arguments as a person reads them: JSON written again with non-ASCII as itself (`6×8`, not
    `6\\u00d78`); anything that is not JSON as it came."""
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        return arguments


class TerminalView(Observer):
    """Prints each step as it happens: the LLM's and the SLM's text as they stream, tool calls, delegations,
    results, the answer."""

    def __init__(self, style: Style):
        self.style = style
        # The stream whose text is on the current line ("llm" or an SLM call id), if any.
        self.streaming: str | None = None
        self.llm_streamed = False
        self.llm_shown = ""

    def _end_stream(self) -> None:
        if self.streaming is not None:
            print(flush=True)
            self.streaming = None

    def _line(self, text: str) -> None:
        self._end_stream()
        print(text, flush=True)

    def _sink(self, stream: str, label: str) -> TextSink:
        def show(text: str) -> None:
            if self.streaming != stream:
                self._end_stream()
                print(label, end="", flush=True)
                self.streaming = stream
            print(text, end="", flush=True)

        return show

    def llm_text_sink(self) -> TextSink:
        self.llm_streamed = False
        show = self._sink("llm", self.style("LLM  ", "1;34"))

        def stream(text: str) -> None:
            self.llm_streamed = True
            show(text)

        return stream

    def llm_replied(self, response: ChatResponse) -> None:
        if self.llm_streamed:
            self._end_stream()
        elif response.text.strip():
            self._line(self.style("LLM  ", "1;34") + response.text.strip())
        self.llm_streamed = False
        self.llm_shown = response.text
        for call in response.tool_calls:
            self._line(self.style(f"LLM  → tool call {call.name} {readable_arguments(call.arguments)}", "34"))

    def delegating(self, call_id: str, question: str) -> None:
        self._line(self.style(f"DELEGATE [{call_id}] ", "1;33") + question)

    def slm_text_sink(self, call_id: str) -> TextSink:
        return self._sink(call_id, self.style(f"SLM  [{call_id}] ", "1;32"))

    def tool_result(self, call_id: str, result: str) -> None:
        self._line(self.style(f"RESULT [{call_id}] ", "1;35") + result)

    def final_answer(self, text: str) -> None:
        # A strategy without LLM turns (llm or slm alone) shows its reply only here.
        if text.strip() and text != self.llm_shown:
            self._line(self.style("REPLY ", "1;34") + text.strip())
        self._line(self.style("FINAL ", "1;36") + f"{extract_answer(text)}")


def demo_config(overrides: list[str]) -> DictConfig:
    if not any(o.lstrip("+~").startswith("strategy=") for o in overrides):
        overrides = [f"strategy={DEFAULT_STRATEGY}", *overrides]
    return compose_config(overrides)


def tally(evaluation: Evaluation, record: SampleRecord) -> str:
    """Per role the strategy used: calls, tokens as reported, seconds and cost; then the problem's total."""
    lines = []
    for role in evaluation.strategy.roles:
        usage = record.usage[role]
        unreported = f" ({usage.usage_missing_calls} without reported usage)" if usage.usage_missing_calls else ""
        lines.append(
            f"  {role} ({evaluation.model_names[role]}): {counted(usage.calls, 'call')}{unreported}, "
            f"{counted(usage.prompt_tokens, 'prompt token')} + {counted(usage.completion_tokens, 'completion token')}, "
            f"{usage.latency_s:.2f} s, ${usage.cost_usd(evaluation.prices[role]):.6f}"
        )
    lines.append(f"  total: {record.latency_s:.2f} s end to end, ${record.cost_usd:.6f}")
    return "\n".join(lines)


async def answer(evaluation: Evaluation, question: str, view: TerminalView) -> None:
    """Solve `question` through the evaluation's strategy, shown live in `view`, then print the tally; a failed
    model call is raised (ModelCallError)."""
    record = await evaluation.solve(Problem(id=0, question=question, gold=""), view, raise_failure=True)
    view._line(view.style("TALLY", "1") + f" ({counted(record.tool_calls, 'tool call')})")
    print(tally(evaluation, record), flush=True)


async def session(cfg: DictConfig, question: str) -> None:
    # No data set: the question is the problem.
    evaluation = Evaluation.from_config(cfg, split=Split(problems=[]))
    view = TerminalView(Style(sys.stdout.isatty()))
    async with evaluation:
        if question:
            await answer(evaluation, question, view)
            return
        while True:
            try:
                asked = (await asyncio.to_thread(input, "question (empty or 'quit' to stop)> ")).strip()
            except EOFError:
                break
            if asked.lower() in QUIT_WORDS:
                break
            await answer(evaluation, asked, view)


def main(argv: list[str] | None = None) -> None:
    """The console script. `argv`: the arguments (default: the command line's); --help prints help_text's page."""
    arguments = sys.argv[1:] if argv is None else argv
    quiet_libraries()
    if wants_help(arguments):
        # No data set (the question is the problem), no MLflow run, the router by default, and of the job's keys
        # only `device`.
        choices = {group: option for group, option in default_options().items() if group not in ("data", "tracking")}
        choices["strategy"] = DEFAULT_STRATEGY
        print(help_text("delegate-demo", SUMMARY, USAGE, EXAMPLES, choices, keys=["device"], sweeps=False), end="")
        return
    flags = [a for a in arguments if FLAG.match(a)]
    if flags:
        print(
            f"error: {flags[0]} is not a delegate-demo option; it takes a question and key=value settings (see delegate-demo --help)",
            file=sys.stderr,
        )
        sys.exit(2)
    question, overrides = split_arguments(arguments)
    try:
        cfg = demo_config(overrides)
        asyncio.run(session(cfg, question))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except HydraException as error:
        print(f"error: {config_error_line(error) or str(error).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    except ModelCallError as error:
        # The server's words stay out of it (redacted or not): what failed, where to look.
        print(
            f"error: the {error.role} call failed ({error.summary}); check {error.role}.base_url and that the server runs",
            file=sys.stderr,
        )
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
