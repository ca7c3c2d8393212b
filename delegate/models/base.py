"""The one async interface every backend implements: a ChatRequest in, text, tool calls, usage and latency out."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

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


@dataclass(frozen=True)
class GenerateConfig:
    """How to generate, whatever the backend; None = not overridden (the model's setting, else the backend's default).

    - max_tokens: the output bound, in tokens (a served model's `max_tokens`, an in-process one's `max_new_tokens`).
    - temperature: 0 is greedy; above 0 samples. A served model's `temperature: null` leaves it to the server.
    - top_p: nucleus sampling's probability mass (0 to 1), when sampling.
    - seed: makes sampling reproducible (with ChatRequest.sample_index); a seeded call is cached per sample index.
    - stop: texts that end the reply where they first appear (the reply stops before them).
    - timeout_s: how long a served call may take, in seconds (in-process generation has no timeout).
    """

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    timeout_s: float | None = None

    def overridden(self) -> dict[str, Any]:
        """The settings that are set (not None), by name, in field order; `stop` as a list (JSON's shape)."""
        return {
            f.name: list(value) if isinstance(value, tuple) else value
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None
        }

    def over(self, defaults: "GenerateConfig") -> "GenerateConfig":
        """These settings where set, `defaults` elsewhere."""
        return replace(defaults, **{name: value for name, value in vars(self).items() if value is not None})


def sample_seed(seed: int, sample_index: int) -> int:
    """The seed of sample `sample_index` of a request seeded with `seed`: a hash of both (64 bits), so the samples of
    one seed are independent and a sample's seed depends on nothing else (in-process: torch's seed; a served model:
    the seed sent for samples after the first)."""
    digest = hashlib.sha256(f"{seed}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass(frozen=True)
class ChatRequest:
    """One model call: the conversation (OpenAI's message format), the tools offered (OpenAI's function format) and
    `tool_choice` (`auto`, `required`, `none`, OpenAI's meaning; only matters when `tools` are given), how to generate
    (overrides of the model's settings), and which of k samples of the same request this is (0 = the first)."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str = TOOL_CHOICE_AUTO
    config: GenerateConfig = field(default_factory=GenerateConfig)
    sample_index: int = 0


class GenerationDefaults(Protocol):
    """A model config (a backend's schema) that says how it generates when a request overrides nothing."""

    def generate_defaults(self) -> GenerateConfig: ...


def effective_config(model_cfg: GenerationDefaults, overrides: GenerateConfig) -> GenerateConfig:
    """The settings a call runs with: the request's `overrides` merged over the model's defaults. The one place the
    two meet, so that a new knob is a GenerateConfig field and a line in each backend that reads it."""
    return overrides.over(model_cfg.generate_defaults())


class ChatModel(Protocol):
    async def chat(self, request: ChatRequest, on_text: TextSink | None = None) -> ChatResponse:
        """One completion of `request`; with tools, tool calls come back parsed; with `on_text`, text is streamed to
        it too. Errors: a ConfigError for a setting the user must fix; any other failure as the backend raises it
        (RedactedModel turns it into a ModelCallError)."""

    async def aclose(self) -> None: ...
