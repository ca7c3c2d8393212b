"""The one async interface every backend implements: messages (and tools) in, text, tool calls, usage and latency out."""

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

# Receives text as the model writes it (streaming), from the event loop's thread.
TextSink = Callable[[str], None]

# Events a backend notes while reading a reply (see ChatResponse.events); the record counts them.
USAGE_MISSING = "usage_missing"
TOOL_CALL_IN_CONTENT = "tool_call_in_content"
TOOL_CALL_ID_REPLACED = "tool_call_id_replaced"


@dataclass(frozen=True)
class ToolCall:
    # Unique within the conversation: the tool message answering this call carries it.
    id: str
    name: str
    # Raw JSON text as the model produced it; parsing (and its failure) is the caller's business.
    arguments: str
    # The id the server sent (None: it sent none, or the call was read from the reply's text); differs from `id`
    # when the server's was missing or already used in the conversation.
    original_id: str | None = None


@dataclass(frozen=True)
class ChatResponse:
    text: str
    # As the model reported them; None when it reported none (`usage_missing`): unknown, not zero.
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)
    finish_reason: str | None = None
    # Served from the response cache: the tokens and latency are those the call cost when it was made.
    cache_hit: bool = False
    # Of `completion_tokens`, those spent reasoning; of `prompt_tokens`, those the provider served from its own prompt
    # cache (billed at the cached-input price). None when the server did not say.
    reasoning_tokens: int | None = None
    provider_cached_prompt_tokens: int | None = None
    # What the backend noticed reading the reply, one entry per occurrence: USAGE_MISSING, TOOL_CALL_IN_CONTENT,
    # TOOL_CALL_ID_REPLACED. Kept by the response cache, so a replay counts them again.
    events: tuple[str, ...] = ()

    @property
    def usage_missing(self) -> bool:
        """The server reported no usable token counts for this call."""
        return self.prompt_tokens is None or self.completion_tokens is None

    def as_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation, in OpenAI's format."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


# `tool_choice` values, with OpenAI's meaning: the model decides; it must call a tool; it must not call one.
TOOL_CHOICE_AUTO, TOOL_CHOICE_REQUIRED, TOOL_CHOICE_NONE = "auto", "required", "none"


class ChatModel(Protocol):
    async def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: TextSink | None = None,
        tool_choice: str = TOOL_CHOICE_AUTO,
    ) -> ChatResponse:
        """One completion; with `tools`, tool calls come back parsed; with `on_text`, text is streamed to it too.
        `tool_choice` (`auto`, `required`, `none`, OpenAI's meaning) only matters when `tools` are given."""

    async def aclose(self) -> None: ...
