"""Verify: the SLM answers, a third model (the `verifier` role) checks the answer, and the LLM solves the problems
the verifier rejects. A worked example of a new strategy with a new role: this file and conf/strategy/verify.yaml.

Run it with `DELEGATE_PLUGINS=verify DELEGATE_CONFIG_DIR=docs/examples/conf PYTHONPATH=docs/examples \
delegate-eval strategy=verify +verifier=local experiment=local`.
"""

from dataclasses import dataclass, field

from delegate.config.schema import PromptConfig, StrategyConfig
from delegate.models.base import ChatRequest
from delegate.strategies import register_strategy
from delegate.strategies.prompting import render_messages
from delegate.templates import fill


@dataclass
class VerifyConfig(StrategyConfig):
    prompt: PromptConfig = field(default_factory=PromptConfig)
    # {question} and {answer} are filled in; a reply starting with "yes" accepts the SLM's answer.
    check_prompt: str = (
        "Question: {question}\nProposed answer: {answer}\nIs the proposed answer correct? Reply yes or no."
    )


@register_strategy("verify", roles=("slm", "verifier", "llm"), schema=VerifyConfig)
async def solve_with_verifier(problem, models, cfg: VerifyConfig, observer, attempt) -> None:
    messages = render_messages(cfg.prompt, problem.question)
    draft = await models["slm"].chat(ChatRequest(messages))
    check = fill(cfg.check_prompt, question=problem.question, answer=draft.text)
    verdict = await models["verifier"].chat(ChatRequest([{"role": "user", "content": check}]))
    final = draft
    if not verdict.text.strip().lower().startswith("yes"):
        attempt.events["escalated"] += 1  # counted in the record's events
        final = await models["llm"].chat(ChatRequest(messages))
    attempt.transcript.extend([*messages, final.as_message()])
    attempt.response = final.text
    observer.final_answer(final.text)
