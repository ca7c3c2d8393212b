"""Per-problem accounting: every call a strategy makes through a role is summed as the model reported it."""

from dataclasses import asdict, dataclass
from typing import Any

from delegate.models.base import ChatModel, ChatResponse


@dataclass
class RoleUsage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    def add(self, response: ChatResponse) -> None:
        self.calls += 1
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.latency_s += response.latency_s

    def cost_usd(self, price_input_usd_per_1m: float, price_output_usd_per_1m: float) -> float:
        return (self.prompt_tokens * price_input_usd_per_1m + self.completion_tokens * price_output_usd_per_1m) / 1e6

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"tokens": self.prompt_tokens + self.completion_tokens}


class MeteredModel:
    """A role's model as one problem sees it: same interface, with the usage of this problem's calls kept."""

    def __init__(self, model: ChatModel):
        self._model = model
        self.usage = RoleUsage()

    async def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> ChatResponse:
        response = await self._model.chat(messages, tools)
        self.usage.add(response)
        return response
