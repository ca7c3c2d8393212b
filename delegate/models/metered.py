"""Per-problem accounting: every call a strategy makes through a role is summed as the model reported it, and traced."""

from collections import Counter
from typing import Any

from delegate.models.base import TOOL_CHOICE_AUTO, ChatModel, ChatResponse, TextSink
from delegate.records import RoleUsage
from delegate.tracking.traces import span


class MeteredModel:
    """A role's model as one problem sees it: same interface, with the usage of this problem's calls kept, and the
    events its backend noted (`ChatResponse.events`) counted into `events` (the attempt's, when given)."""

    def __init__(self, model: ChatModel, role: str, events: Counter | None = None):
        self._model = model
        self.role = role
        self.usage = RoleUsage()
        self.events = Counter() if events is None else events

    async def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: TextSink | None = None,
        tool_choice: str = TOOL_CHOICE_AUTO,
    ) -> ChatResponse:
        inputs = {"messages": messages, "tools": tools}
        if tools and tool_choice != TOOL_CHOICE_AUTO:
            inputs["tool_choice"] = tool_choice
        with span(f"{self.role}.chat", "CHAT_MODEL", inputs=inputs) as live:
            response = await self._model.chat(messages, tools, on_text, tool_choice)
            self.usage.add(response)
            self.events.update(response.events)
            live.set_outputs(response.as_message())
            attributes = {"role": self.role, "latency_s": response.latency_s, "cache_hit": response.cache_hit}
            if response.usage_missing:
                attributes["usage_missing"] = True
            else:
                attributes |= {"prompt_tokens": response.prompt_tokens, "completion_tokens": response.completion_tokens}
                if response.reasoning_tokens is not None:
                    attributes["reasoning_tokens"] = response.reasoning_tokens
                if response.provider_cached_prompt_tokens is not None:
                    attributes["provider_cached_prompt_tokens"] = response.provider_cached_prompt_tokens
            live.set_attributes(attributes)
        return response
