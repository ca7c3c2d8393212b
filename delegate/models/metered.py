"""Per-problem accounting: every call a strategy makes through a role is summed as the model reported it, and traced."""

from collections import Counter
from typing import Any

from delegate.models.base import TOOL_CHOICE_AUTO, ChatModel, ChatRequest, ChatResponse, TextSink
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

    async def chat(self, request: ChatRequest, on_text: TextSink | None = None) -> ChatResponse:
        # The trace's inputs: what the call was sent; what a request did not always carry, only when it is set.
        inputs: dict[str, Any] = {"messages": request.messages, "tools": request.tools}
        if request.tools and request.tool_choice != TOOL_CHOICE_AUTO:
            inputs["tool_choice"] = request.tool_choice
        if overrides := request.config.overridden():
            inputs["config"] = overrides
        if request.sample_index:
            inputs["sample_index"] = request.sample_index
        with span(f"{self.role}.chat", "CHAT_MODEL", inputs=inputs) as live:
            response = await self._model.chat(request, on_text)
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
