"""`delegate-demo "question" [overrides]`: answer live with the router (or any strategy), showing every step."""

import asyncio
import re
import sys
import time

import openai
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from delegate.config import compose_config
from delegate.data.problem import Problem
from delegate.errors import ConfigError
from delegate.records import ROLES
from delegate.models import ChatResponse, build_model
from delegate.models.metered import MeteredModel
from delegate.scoring import extract_answer
from delegate.strategies import Attempt, get_strategy
from delegate.strategies.observer import Observer

# `key=value`, `+key=value`, `group@pkg=option`: everything else on the command line is the question.
OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.@/-]*=")
QUIT_WORDS = {"", "q", "quit", "exit"}


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


class TerminalView(Observer):
    """Prints each step as it happens: LLM turns, delegations, the SLM's text as it streams, results."""

    def __init__(self, style: Style):
        self.style = style
        self.streaming_call: str | None = None

    def _line(self, text: str = "") -> None:
        if self.streaming_call is not None:
            print()
            self.streaming_call = None
        print(text, flush=True)

    def llm_replied(self, response: ChatResponse) -> None:
        if response.text.strip():
            self._line(self.style("LLM  ", "1;34") + response.text.strip())
        for call in response.tool_calls:
            self._line(self.style(f"LLM  → tool call {call.name} {call.arguments}", "34"))

    def delegating(self, call_id: str, question: str) -> None:
        self._line(self.style(f"DELEGATE [{call_id}] ", "1;33") + question)

    def slm_text_sink(self, call_id: str):
        def show(text: str) -> None:
            if self.streaming_call != call_id:
                self._line()
                print(self.style(f"SLM  [{call_id}] ", "1;32"), end="", flush=True)
                self.streaming_call = call_id
            print(text, end="", flush=True)

        return show

    def tool_result(self, call_id: str, result: str) -> None:
        self._line(self.style(f"RESULT [{call_id}] ", "1;35") + result)

    def final_answer(self, text: str) -> None:
        self._line(self.style("FINAL ", "1;36") + f"{extract_answer(text)}")


def demo_config(overrides: list[str]) -> DictConfig:
    # The demo is about delegation: the router unless the command line picks another strategy.
    if not any(o.lstrip("+~").startswith("strategy=") for o in overrides):
        overrides = ["strategy=router", *overrides]
    return compose_config(overrides)


def tally(cfg: DictConfig, metered: dict[str, MeteredModel], elapsed_s: float) -> str:
    lines = []
    total_usd = 0.0
    for role in ROLES:
        if role not in metered:
            continue
        usage = metered[role].usage
        cost_usd = usage.cost_usd(cfg[role].price_input_usd_per_1m, cfg[role].price_output_usd_per_1m)
        total_usd += cost_usd
        lines.append(
            f"  {role} ({cfg[role].name}): {usage.calls} calls, {usage.prompt_tokens} prompt + "
            f"{usage.completion_tokens} completion tokens, {usage.latency_s:.2f} s, ${cost_usd:.6f}"
        )
    lines.append(f"  total: {elapsed_s:.2f} s end to end, ${total_usd:.6f}")
    return "\n".join(lines)


async def answer(cfg: DictConfig, models, question: str, view: TerminalView) -> None:
    strategy = get_strategy(cfg.strategy.name)
    metered = {role: MeteredModel(models[role], role) for role in strategy.roles}
    started_s = time.perf_counter()
    attempt = Attempt()
    await strategy.solve(Problem(id=0, question=question, gold=""), metered, OmegaConf.to_object(cfg.strategy), view, attempt)
    view._line(view.style("TALLY", "1") + f" ({attempt.tool_calls} tool calls)")
    print(tally(cfg, metered, time.perf_counter() - started_s), flush=True)


async def session(cfg: DictConfig, question: str) -> None:
    strategy = get_strategy(cfg.strategy.name)
    models = {role: build_model(cfg[role], role) for role in strategy.roles}
    view = TerminalView(Style(sys.stdout.isatty()))
    try:
        if question:
            await answer(cfg, models, question, view)
            return
        while True:
            try:
                asked = (await asyncio.to_thread(input, "question (empty or 'quit' to stop)> ")).strip()
            except EOFError:
                break
            if asked.lower() in QUIT_WORDS:
                break
            await answer(cfg, models, asked, view)
    finally:
        for model in models.values():
            await model.aclose()


def main(argv: list[str] | None = None) -> None:
    question, overrides = split_arguments(sys.argv[1:] if argv is None else argv)
    try:
        cfg = demo_config(overrides)
        asyncio.run(session(cfg, question))
    except (ConfigError, HydraException) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (openai.APIConnectionError, openai.APIStatusError) as error:
        print(f"error: a model server failed ({type(error).__name__}: {error}); check llm.base_url / slm.base_url and that the server runs", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
