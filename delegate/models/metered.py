"""Per-problem accounting: every call a strategy makes through a role is summed as the model reported it, and traced."""

from dataclasses import asdict, dataclass
from typing import Any

from delegate.models.base import ChatModel, ChatResponse, TextSink
from delegate.tracking.traces import span


@dataclass
class RoleUsage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    # Calls served from the response cache, and the tokens they had cost when made (included above too).
    cache_hits: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0

    def add(self, response: ChatResponse) -> None:
        self.calls += 1
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.latency_s += response.latency_s
        if response.cache_hit:
            self.cache_hits += 1
            self.cached_prompt_tokens += response.prompt_tokens
            self.cached_completion_tokens += response.completion_tokens

    def cost_usd(self, price_input_usd_per_1m: float, price_output_usd_per_1m: float) -> float:
        """What these calls cost when they were made, cache hits included."""
        return (self.prompt_tokens * price_input_usd_per_1m + self.completion_tokens * price_output_usd_per_1m) / 1e6

    def cache_saved_usd(self, price_input_usd_per_1m: float, price_output_usd_per_1m: float) -> float:
        """The part of `cost_usd` this run did not pay, because the cache answered."""
        return (
            self.cached_prompt_tokens * price_input_usd_per_1m + self.cached_completion_tokens * price_output_usd_per_1m
        ) / 1e6

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"tokens": self.prompt_tokens + self.completion_tokens}


class MeteredModel:
    """A role's model as one problem sees it: same interface, with the usage of this problem's calls kept."""

    def __init__(self, model: ChatModel, role: str):
        self._model = model
        self.role = role
        self.usage = RoleUsage()

    async def chat(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, on_text: TextSink | None = None
    ) -> ChatResponse:
        with span(f"{self.role}.chat", "CHAT_MODEL", inputs={"messages": messages, "tools": tools}) as live:
            response = await self._model.chat(messages, tools, on_text)
            self.usage.add(response)
            live.set_outputs(response.as_message())
            live.set_attributes(
                {
                    "role": self.role,
                    "prompt_tokens": response.prompt_tokens,
                    "completion_tokens": response.completion_tokens,
                    "latency_s": response.latency_s,
                    "cache_hit": response.cache_hit,
                }
            )
        return response
