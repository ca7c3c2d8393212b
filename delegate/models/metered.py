"""Per-problem accounting: every call a strategy makes through a role is summed as the model reported it, and traced."""

from typing import Any

from delegate.models.base import ChatModel, ChatResponse, TextSink
from delegate.records import RoleUsage
from delegate.tracking.traces import span


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
