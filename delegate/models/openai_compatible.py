"""Backend for any OpenAI-compatible chat endpoint (OpenAI, vLLM, SGLang, Ollama, llama.cpp) through the async SDK."""

import time
from typing import Any

import openai

from delegate.config.schema import OpenAIModelConfig
from delegate.models.base import ChatResponse, ToolCall
from delegate.models.secrets import read_api_key

# Local servers accept any key, but the SDK refuses to start without one.
PLACEHOLDER_API_KEY = "not-needed"


class OpenAICompatibleModel:
    def __init__(self, cfg: OpenAIModelConfig, role: str):
        self.cfg = cfg
        api_key = read_api_key(cfg.api_key_env, role, required=cfg.base_url is None)
        self._client = openai.AsyncOpenAI(
            api_key=api_key or PLACEHOLDER_API_KEY,
            base_url=cfg.base_url,
            timeout=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )

    async def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> ChatResponse:
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
        started_s = time.perf_counter()
        completion = await self._client.chat.completions.create(**request)
        latency_s = time.perf_counter() - started_s
        choice = completion.choices[0]
        usage = completion.usage
        return ChatResponse(
            text=choice.message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_s=latency_s,
            tool_calls=tuple(
                ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
                for c in choice.message.tool_calls or ()
                if c.type == "function"
            ),
            finish_reason=choice.finish_reason,
        )

    async def aclose(self) -> None:
        await self._client.close()
