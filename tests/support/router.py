"""One problem through the router, with the real config and the real SDK, against scripted LLM and SLM servers."""

import asyncio

from omegaconf import OmegaConf

from delegate.compose import compose_config
from delegate.data import Split
from delegate.data.problem import Problem
from delegate.evaluation import Evaluation
from delegate.records import ModelPrices, SampleRecord
from delegate.strategies.router import RouterConfig
from delegate.testing.scripted_server import ScriptedServer

PRICES = {"llm": ModelPrices(input_usd_per_1m=2.5, output_usd_per_1m=10.0), "slm": ModelPrices()}
PROBLEM = Problem(id=0, question="A baker puts 6 muffins into each box. He fills 8 boxes. How many muffins?", gold="48")


def solve(
    llm: ScriptedServer, slm: ScriptedServer, *overrides: str, problem: Problem = PROBLEM
) -> tuple[SampleRecord, RouterConfig]:
    """The record of one problem run through `Evaluation.solve`, and the router config it ran with."""
    return solve_composed(
        [
            "strategy=router",
            "llm=openai-compatible",
            f"llm.base_url={llm.base_url}",
            "slm=openai-compatible",
            f"slm.base_url={slm.base_url}",
            *overrides,
        ],
        problem,
    )


def solve_composed(overrides: list[str], problem: Problem = PROBLEM) -> tuple[SampleRecord, RouterConfig]:
    """`solve` for any composed config (in-process models too): the record and the router config it ran with."""
    cfg = compose_config(overrides)
    router_cfg = OmegaConf.to_object(cfg.strategy)
    assert isinstance(router_cfg, RouterConfig)

    evaluation = Evaluation.from_config(cfg, split=Split(problems=[problem]))
    evaluation.prices = PRICES

    async def run() -> SampleRecord:
        async with evaluation:
            return await evaluation.solve(problem)

    return asyncio.run(run()), router_cfg
