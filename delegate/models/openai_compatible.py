"""Backend for any OpenAI-compatible chat endpoint (OpenAI, vLLM, SGLang, Ollama, llama.cpp) through the async SDK."""

import asyncio
import time
from contextlib import nullcontext
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from delegate.config.schema import OpenAIModelConfig
from delegate.models.base import ChatResponse, TextSink, ToolCall
from delegate.models.secrets import read_api_key

# Local servers accept any key, but the SDK refuses to start without one.
PLACEHOLDER_API_KEY = "not-needed"
# Given explicitly: left to itself the SDK would take $OPENAI_BASE_URL, a URL the config and the cache never see.
OPENAI_BASE_URL = "https://api.openai.com/v1"
CHAT_COMPLETIONS_PATH = "/chat/completions"


class OpenAICompatibleModel:
    def __init__(self, cfg: OpenAIModelConfig, role: str):
        self.cfg = cfg
        api_key = read_api_key(cfg.api_key_env, role, required=cfg.base_url is None)
        self._client = openai.AsyncOpenAI(
            api_key=api_key or PLACEHOLDER_API_KEY,
            base_url=cfg.base_url or OPENAI_BASE_URL,
            timeout=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )
        self._in_flight = asyncio.Semaphore(cfg.max_requests_in_flight) if cfg.max_requests_in_flight else None

    async def chat(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, on_text: TextSink | None = None
    ) -> ChatResponse:
        request: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": messages,
            "temperature": self.cfg.temperature,
            # Bound every call: with tool_choice="auto" some servers ignore it, the timeout still holds.
            "max_tokens": self.cfg.max_tokens,
        }
        if tools:
            request["tools"] = tools
            request["tool_choice"] = "auto"
        async with self._in_flight or nullcontext():
            return await self._complete(request, on_text)

    async def _complete(self, request: dict[str, Any], on_text: TextSink | None) -> ChatResponse:
        started_s = time.perf_counter()
        if on_text is None:
            # The SDK's documented route for a raw request: same retries, timeout and auth as `chat.completions.create`,
            # without its per-call walk over the messages' type hints (about 2 ms of CPU a call, measured here),
            # which our plain-dict messages don't need.
            completion = await self._client.post(CHAT_COMPLETIONS_PATH, body=request, cast_to=ChatCompletion)
            choice, usage = completion.choices[0], completion.usage
            text, finish_reason = choice.message.content or "", choice.finish_reason
            tool_calls = tuple(
                ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
                for c in choice.message.tool_calls or ()
                if c.type == "function"
            )
        else:
            text, tool_calls, finish_reason, usage = await self._stream(request, on_text)
        return ChatResponse(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_s=time.perf_counter() - started_s,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
        )

    async def _stream(self, request: dict[str, Any], on_text: TextSink):
        """Stream the completion, passing text on as it comes; tool calls arrive in pieces, keyed by index."""
        stream = await self._client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish_reason = usage = None
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                finish_reason = choice.finish_reason or finish_reason
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    on_text(choice.delta.content)
                for piece in choice.delta.tool_calls or ():
                    call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = piece.id or call["id"]
                    if piece.function is not None:
                        call["name"] += piece.function.name or ""
                        call["arguments"] += piece.function.arguments or ""
        tool_calls = tuple(ToolCall(**calls[index]) for index in sorted(calls))
        return "".join(parts), tool_calls, finish_reason, usage

    async def aclose(self) -> None:
        await self._client.close()
