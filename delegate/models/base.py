"""The one async interface every backend implements: messages (and tools) in, text, tool calls, usage and latency out."""

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

# Receives text as the model writes it (streaming), from the event loop's thread.
TextSink = Callable[[str], None]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    # Raw JSON text as the model produced it; parsing (and its failure) is the caller's business.
    arguments: str


@dataclass(frozen=True)
class ChatResponse:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)
    finish_reason: str | None = None
    # Served from the response cache: the tokens and latency are those the call cost when it was made.
    cache_hit: bool = False

    def as_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation, in OpenAI's format."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


class ChatModel(Protocol):
    async def chat(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, on_text: TextSink | None = None
    ) -> ChatResponse:
        """One completion; with `tools`, tool calls come back parsed; with `on_text`, text is streamed to it too."""

    async def aclose(self) -> None: ...
