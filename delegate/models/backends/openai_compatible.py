"""Backend for any OpenAI-compatible chat endpoint (OpenAI, vLLM, SGLang, Ollama, llama.cpp) through the async SDK.

What a server sends is untrusted input: the reply is read as plain JSON and normalised here, once, into a
ChatResponse, so every server's quirks end at this boundary (see `read_reply`). The SDK is imported when a model is
built, not with this module.
"""

import asyncio
import functools
import itertools
import json
import os
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlsplit

from omegaconf import DictConfig

from delegate.config.bounds import Bound, bounded, check_bounds
from delegate.config.schema import ModelConfig
from delegate.errors import ConfigError
from delegate.models.backends import BACKENDS
from delegate.models.base import (
    TOOL_CALL_ID_REPLACED,
    TOOL_CALL_IN_CONTENT,
    USAGE_MISSING,
    ChatRequest,
    ChatResponse,
    GenerateConfig,
    TextSink,
    ToolCall,
    effective_config,
    sample_seed,
)
from delegate.models.hermes import MALFORMED_CALL_NAME, parse_tool_calls
from delegate.models.secrets import read_api_key

if TYPE_CHECKING:
    import openai

# Local servers accept any key, but the SDK refuses to start without one.
PLACEHOLDER_API_KEY = "not-needed"
# Given explicitly: left to itself the SDK would take $OPENAI_BASE_URL, a URL the config and the cache never see.
OPENAI_BASE_URL = "https://api.openai.com/v1"
CHAT_COMPLETIONS_PATH = "/chat/completions"
# Ids given to tool calls whose server sent none, or one already used in the conversation.
LOCAL_ID_PREFIX = "call_local_"
HERMES_OPEN_TAG = "<tool_call>"
# A 400/422 that refuses a parameter itself (not its value's size): OpenAI's codes, and the words servers use.
_REFUSAL_CODES = {"unsupported_parameter", "unsupported_value"}
_REFUSAL_WORDS = re.compile(
    r"unsupported|not supported|does not support|extra inputs|extra_forbidden|not permitted|unrecognized|unknown (?:parameter|field|argument)",
    re.IGNORECASE,
)
# Generation settings sent under their own names when set (max_tokens goes as `max_tokens_param`; the timeout is
# the HTTP call's).
SENT_SETTINGS = ("temperature", "top_p", "seed", "stop")
# Finish reasons that explain a reply with no content and no tool calls: it is empty, not malformed.
_EMPTY_FOR_A_REASON = {"length", "content_filter"}


class MaxTokensParam(str, Enum):
    """The request field that carries `max_tokens`."""

    max_tokens = "max_tokens"  # chat models and most OpenAI-compatible servers
    max_completion_tokens = (
        "max_completion_tokens"  # OpenAI's reasoning models (o-series, gpt-5), which refuse max_tokens
    )


@dataclass
class OpenAIModelConfig(ModelConfig):
    backend: str = "openai"
    base_url: Optional[str] = None
    api_key_env: Optional[str] = "OPENAI_API_KEY"
    # The output bound of every call (reasoning tokens included, for reasoning models), sent as `max_tokens_param`.
    max_tokens: int = bounded(1024, Bound(1))
    max_tokens_param: MaxTokensParam = MaxTokensParam.max_tokens
    # null = not sent (the server's default; reasoning models accept no other). Only 0 (or a call's seed) makes calls
    # cacheable.
    temperature: Optional[float] = bounded(0.0, Bound(0))
    timeout_s: float = bounded(120.0, Bound(0, low_included=False))
    # Retries of a call that may pass next time (HTTP 408, 409, 429, 5xx, connection errors, timeouts, a malformed
    # 200): after the wait the server asked for (Retry-After, retry-after-ms), else `retry_backoff_s` doubling up to
    # `retry_max_backoff_s`; each wait gets up to half again as jitter. 8 absorbs a steady 429 on one call in three.
    # A 429 or 503 also holds every call to the same base_url (both roles) for that wait; HTTP 400, 401, 403 or 404
    # three times in a row stops the run with one line naming the setting to fix (EndpointFailing).
    max_retries: int = bounded(8, Bound(0))
    # The first wait of the backoff (seconds).
    retry_backoff_s: float = bounded(0.5, Bound(0))
    # The longest wait before a retry (seconds; a longer Retry-After is cut to it), jitter aside.
    retry_max_backoff_s: float = bounded(30.0, Bound(0))
    # Requests in flight to this endpoint at once; null = no limit beyond `concurrency`.
    max_requests_in_flight: Optional[int] = bounded(None, Bound(1))

    def generate_defaults(self) -> GenerateConfig:
        """What a call sends when its request overrides nothing: these max_tokens, temperature and timeout_s."""
        return GenerateConfig(max_tokens=self.max_tokens, temperature=self.temperature, timeout_s=self.timeout_s)


class MalformedResponse(ValueError):
    """A 200 reply that is not a usable chat completion (not JSON, not an object, no choices, a message with neither
    content nor tool calls); fails that call like an HTTP error, and is retried like one. Its message says which,
    never quoting the body."""


@BACKENDS.register("openai")
class OpenAICompatibleModel:
    """A served model, called over HTTP with the openai SDK (its own retries off: ours, `delegate.models.retry`)."""

    schema = OpenAIModelConfig

    def __init__(self, cfg: OpenAIModelConfig, role: str):
        import openai

        from delegate.models.retry import RetryingCaller

        self.cfg = cfg
        self.role = role
        api_key = read_api_key(cfg.api_key_env, role, required=cfg.base_url is None)
        base_url = cfg.base_url or OPENAI_BASE_URL
        # The SDK's own retries are off: ours (delegate.models.retry) share one back-off per endpoint and a breaker.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or PLACEHOLDER_API_KEY, base_url=base_url, timeout=cfg.timeout_s, max_retries=0
        )
        self._send = RetryingCaller(
            base_url,
            cfg.model,
            cfg.max_retries,
            cfg.retry_backoff_s,
            cfg.retry_max_backoff_s,
            functools.partial(failing_line, role, cfg),
            also_transient=(MalformedResponse,),
        )
        self._in_flight = asyncio.Semaphore(cfg.max_requests_in_flight) if cfg.max_requests_in_flight else None

    @classmethod
    def setting_checks(cls, cfg: DictConfig, role: str) -> dict[str, Callable[[], str]]:
        """The role's numbers and base_url, that nothing runs in-process, and its API key."""
        model_cfg = cfg[role]
        return {
            "settings": lambda: check_served_settings(model_cfg, role),
            "device": lambda: f"none in-process; {role} is served at {model_cfg.get('base_url') or OPENAI_BASE_URL}",
            "api key": lambda: check_api_key(model_cfg, role),
        }

    async def chat(self, request: ChatRequest, on_text: TextSink | None = None) -> ChatResponse:
        """One chat completion: the model's settings with the request's overrides (`effective_config`); top_p, seed
        and stop are sent only when set (the seed of sample i > 0 derived from the seed and i), temperature only when
        not null."""
        settings = effective_config(self.cfg, request.config)
        # Bound every call: with tool_choice="auto" some servers ignore it, the timeout still holds.
        body: dict[str, Any] = {"model": self.cfg.model, "messages": request.messages}
        body[self._max_tokens_field] = settings.max_tokens
        body |= {name: value for name, value in settings.overridden().items() if name in SENT_SETTINGS}
        if "seed" in body and request.sample_index:
            # The k samples of one seeded request must differ: sample i > 0 sends a seed of its own, derived from
            # both (a server's seed is a 32-bit integer for some, so it is kept within that); sample 0 sends the seed.
            body["seed"] = sample_seed(body["seed"], request.sample_index) % 2**31
        if request.tools:
            body["tools"] = request.tools
            body["tool_choice"] = request.tool_choice
        used_ids = _tool_call_ids(request.messages)
        started_s = time.perf_counter()
        text_passed_on = False

        def sink(text: str) -> None:
            nonlocal text_passed_on
            text_passed_on = True
            on_text(text)

        async def attempt() -> ChatResponse:
            message, finish_reason, usage = await self._request(body, settings, None if on_text is None else sink)
            # The latency is the call's as the caller waited for it: retries and their waits included.
            latency_s = time.perf_counter() - started_s
            return read_reply(message, finish_reason, usage, latency_s, bool(request.tools), used_ids)

        return await self._send(attempt, may_retry=lambda: not text_passed_on)

    async def _request(
        self, request: dict[str, Any], settings: GenerateConfig, on_text: TextSink | None
    ) -> tuple[Any, Any, Any]:
        """One attempt: (message, finish_reason, usage) as the server sent them, streamed to `on_text` if given,
        within `settings.timeout_s`."""
        import openai

        options = {"timeout": settings.timeout_s}
        async with self._in_flight or nullcontext():
            try:
                if on_text is None:
                    return _first_choice(await self._post(request, options))
                message, finish_reason, usage = await self._stream(request, options, on_text)
                if finish_reason is None and not message["content"] and not message["tool_calls"]:
                    # An empty stream: the server can't stream this request (llama-cpp-python's function calling,
                    # with tool_choice="auto"). Asked again, not streamed; the text is passed on whole.
                    message, finish_reason, usage = _first_choice(await self._post(request, options))
                    if isinstance(message, dict) and _text(message.get("content")):
                        on_text(_text(message.get("content")))
                return message, finish_reason, usage
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                refused = self._refused_setting(error, request)
                if refused is None:
                    raise
                raise ConfigError(refused) from None

    async def _post(self, request: dict[str, Any], options: dict[str, Any]) -> Any:
        """The decoded JSON of a non-streamed reply, as it came (a non-JSON body comes back as its text).

        The SDK's documented route for a raw request: same timeout and auth as `chat.completions.create`, without its
        per-call walk over the messages' type hints; `object` leaves the body for `_first_choice` to judge."""
        try:
            return await self._client.post(CHAT_COMPLETIONS_PATH, body=request, cast_to=object, options=options)
        except json.JSONDecodeError:
            raise MalformedResponse("the server's reply is labelled JSON but is not valid JSON (truncated?)") from None

    @property
    def _max_tokens_field(self) -> str:
        return MaxTokensParam(self.cfg.max_tokens_param).value

    async def _stream(
        self, request: dict[str, Any], options: dict[str, Any], on_text: TextSink
    ) -> tuple[dict[str, Any], Any, Any]:
        """Stream the completion, passing text on as it comes; returns (message, finish_reason, usage) like a plain
        reply, its tool calls put together from their deltas (see `StreamedToolCalls`), its content null when no
        delta carried any. A chunk that is not JSON is a MalformedResponse."""
        import openai

        stream = await self._client.post(
            CHAT_COMPLETIONS_PATH,
            body=request | {"stream": True, "stream_options": {"include_usage": True}},
            cast_to=object,
            options=options,
            stream=True,
            stream_cls=openai.AsyncStream[object],
        )
        parts: list[str] = []
        content_sent = False
        calls = StreamedToolCalls()
        finish_reason = usage = None
        try:
            async with stream:
                async for chunk in stream:
                    if not isinstance(chunk, dict):
                        continue
                    # Some servers send usage on every chunk, some only on the last: the last one seen holds.
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        if not isinstance(choice, dict):
                            continue
                        finish_reason = choice.get("finish_reason") or finish_reason
                        delta = choice.get("delta")
                        if not isinstance(delta, dict):
                            continue
                        content_sent = content_sent or delta.get("content") is not None
                        text = _text(delta.get("content"))
                        if text:
                            parts.append(text)
                            on_text(text)
                        pieces = delta.get("tool_calls")
                        for piece in [pieces] if isinstance(pieces, dict) else pieces or ():
                            calls.add(piece)
        except json.JSONDecodeError:
            raise MalformedResponse("a streamed chunk of the server's reply is not valid JSON") from None
        content = "".join(parts) if content_sent else None
        return {"content": content, "tool_calls": calls.assembled()}, finish_reason, usage

    def _refused_setting(self, error: "openai.APIStatusError", request: dict[str, Any]) -> str | None:
        """One line naming our setting and its fix, when the server refused a parameter `request` sent; else None.

        Never quotes the server's error (it may echo a key or the prompt): only the parameter's name."""
        body = error.body if isinstance(error.body, dict) else {}
        text = str(body.get("message", error.body if isinstance(error.body, str) else ""))
        code, param = body.get("code"), body.get("param")
        if code not in _REFUSAL_CODES and not _REFUSAL_WORDS.search(text):
            return None
        sent = [self._max_tokens_field] + (["temperature"] if "temperature" in request else [])
        named = [p for p in sent if p == param or re.search(rf"\b{p}\b", text)]
        if not named:
            return None
        role, model = self.role, self.cfg.model
        if named[0] == "temperature":
            return (
                f"{role}.temperature={request['temperature']}: the server refused 'temperature' for model {model} "
                f"(reasoning models take only their default); set {role}.temperature=null to leave it out"
            )
        other = next(p.value for p in MaxTokensParam if p.value != named[0])
        return (
            f"{role}.max_tokens_param={named[0]}: the server refused '{named[0]}' for model {model} (OpenAI's reasoning "
            f"models, o-series and gpt-5, take max_completion_tokens); set {role}.max_tokens_param={other}"
        )

    async def aclose(self) -> None:
        await self._client.close()


def check_base_url(base_url: str | None, role: str) -> str:
    """`<role>.base_url` is an http(s) URL without credentials; returns the URL calls go to. The URL is never shown
    when it carries a user or password."""
    if base_url is None:
        return OPENAI_BASE_URL
    authority = base_url.split("://", 1)[-1].split("/", 1)[0]
    if "@" in authority:
        raise ConfigError(
            f"{role}.base_url: carries credentials (user:password@ before the host), which would be "
            f"logged with the URL; remove them and name the variable that holds the key in {role}.api_key_env"
        )
    parts = urlsplit(base_url)
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{role}.base_url={base_url}: not an http(s) URL; give the server's URL, e.g. http://127.0.0.1:8000/v1"
        )
    return base_url


def check_served_settings(model_cfg: DictConfig, role: str) -> str:
    """The role's numbers within their bounds (the schema's) and its base_url (`check_base_url`)."""
    check_bounds(model_cfg, OpenAIModelConfig, f"{role}.")
    url = check_base_url(model_cfg.base_url, role)
    return (
        f"{model_cfg.model} at {url}, max_tokens={model_cfg.max_tokens}, temperature={model_cfg.temperature}, "
        f"timeout_s={model_cfg.timeout_s}, max_retries={model_cfg.max_retries}"
    )


def check_api_key(model_cfg: DictConfig, role: str) -> str:
    """The key `<role>.api_key_env` names is in the environment or ./.env (its value is never shown): needed for
    OpenAI's API; with a base_url, naming a variable that is not set is a mistake too (no key would be sent)."""
    if model_cfg.api_key_env is None:
        return f"none sent ({role}.api_key_env=null)"
    key = read_api_key(model_cfg.api_key_env, role, required=model_cfg.base_url is None)
    if key is None:
        raise ConfigError(
            f"{role}.api_key_env: ${model_cfg.api_key_env} is not set; export it or add it to .env, "
            f"or set {role}.api_key_env=null if {model_cfg.base_url} needs no key"
        )
    source = "the environment" if os.environ.get(model_cfg.api_key_env) else ".env"
    return f"${model_cfg.api_key_env} is set (from {source}; value not shown)"


def failing_line(role: str, cfg: OpenAIModelConfig, status: int) -> str:
    """The circuit breaker's one line for HTTP `status` (400, 401, 403, 404) from `role`'s endpoint: the setting to
    check and the fix. Never quotes the server's error (it may echo a key)."""
    from delegate.models.retry import BREAKER_THRESHOLD

    at = f"{role}.base_url={cfg.base_url}" if cfg.base_url else f"{role}.base_url=null (OpenAI's API)"
    seen = f"HTTP {status}, {BREAKER_THRESHOLD} calls in a row"
    if status == 401:
        key = f"${cfg.api_key_env}" if cfg.api_key_env else f"{role}.api_key_env=null, no key sent"
        return (
            f"{at} refused the API key ({seen}); set {role}.api_key_env to the variable holding a valid key "
            f"for this server (now: {key})"
        )
    if status == 403:
        return (
            f"{at} denies this key access to {role}.model={cfg.model} ({seen}); use a key with access to it "
            f"({role}.api_key_env), or another {role}.model"
        )
    if status == 404:
        return (
            f"{role}.model={cfg.model} is not served at {at} ({seen}); check the model's name (the server lists them "
            f"at <base_url>/models) and the URL's path (usually ending in /v1)"
        )
    return (
        f"{at} refused the request for {role}.model={cfg.model} ({seen}); check {role}'s request settings: "
        f"max_tokens={cfg.max_tokens}, max_tokens_param={MaxTokensParam(cfg.max_tokens_param).value}, "
        f"temperature={cfg.temperature}"
    )


def _first_choice(body: Any) -> tuple[Any, Any, Any]:
    """(message, finish_reason, usage) of a non-streamed reply as `_post` returns it; MalformedResponse if it is not
    a JSON object with a choice."""
    if isinstance(body, str):  # the SDK hands back the text of a body not labelled JSON (an HTML error page)
        raise MalformedResponse("the server's reply is text (an HTML page?), not a JSON chat completion")
    if not isinstance(body, dict):
        raise MalformedResponse(f"the server's reply is a JSON {type(body).__name__}, not a chat completion object")
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict):
        raise MalformedResponse("the server's reply has no choices")
    return choice.get("message"), choice.get("finish_reason"), body.get("usage")


def read_reply(
    message: Any, finish_reason: Any, usage: Any, latency_s: float, tools_offered: bool, used_ids: set[str]
) -> ChatResponse:
    """A server's reply as a ChatResponse, whatever shape its fields came in.

    - content: a string; a list of text parts is joined. Null or missing with no tool calls is a MalformedResponse,
      unless `finish_reason` says why nothing came (`length`: the output bound ran out; `content_filter`): then "".
    - message: anything but an object is a MalformedResponse.
    - tool calls: each one is a function call whatever its `type` says (or a missing one); `function.arguments`
      becomes JSON text (an object is serialized, null or missing is "", a number is its JSON), so the caller can
      answer anything unusable with a tool error; a call with no string name is passed on as MALFORMED_CALL_NAME.
    - ids: a call without an id, or with one already used in this reply or conversation (`used_ids`), gets a local
      one (`call_local_<n>`; event TOOL_CALL_ID_REPLACED); the server's id stays in `original_id`.
    - tools offered, no tool calls, and `<tool_call>` text in the content (the server's tool parser failed): the
      calls are read with the Hermes parser (event TOOL_CALL_IN_CONTENT), so they are never taken for an answer.
    - usage: missing, null, or counts that are not non-negative integers (or both 0) make the token counts None
      (event USAGE_MISSING): unknown, never 0.
    """
    events: list[str] = []
    finish_reason = finish_reason if isinstance(finish_reason, str) else None
    if not isinstance(message, dict):
        raise MalformedResponse("the server's reply has a choice without a message")
    text = _text(message.get("content"))
    raw_calls = message.get("tool_calls")
    if isinstance(raw_calls, dict):
        raw_calls = [raw_calls]
    calls = [_read_call(call) for call in raw_calls] if isinstance(raw_calls, list) else []
    if message.get("content") is None and not calls and finish_reason not in _EMPTY_FOR_A_REASON:
        raise MalformedResponse("the server's reply has neither content (null or missing) nor tool calls")
    native = True
    if not calls and tools_offered and HERMES_OPEN_TAG in text:
        hermes = parse_tool_calls(text)
        if hermes.found:
            text, native = hermes.content, False
            calls = [(None, call.name, call.arguments) for call in hermes.tool_calls]
            events.append(TOOL_CALL_IN_CONTENT)
    tool_calls = _with_unique_ids(calls, used_ids, events, native)
    prompt, completion, reasoning, provider_cached = _usage(usage)
    if prompt is None:
        events.append(USAGE_MISSING)
    return ChatResponse(
        text=text,
        prompt_tokens=prompt,
        completion_tokens=completion,
        latency_s=latency_s,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        reasoning_tokens=reasoning,
        provider_cached_prompt_tokens=provider_cached,
        events=tuple(events),
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(
            part if isinstance(part, str) else str(part.get("text") or "") if isinstance(part, dict) else ""
            for part in content
        )
    return json.dumps(content, ensure_ascii=False)


def _arguments_text(arguments: Any) -> str:
    """Arguments as JSON text: a string as sent (a JSON string holding an object, as some servers double-encode,
    unwrapped); null or missing: ""; anything else, its JSON."""
    if isinstance(arguments, str):
        if arguments.startswith('"'):
            try:
                inner = json.loads(arguments)
            except ValueError:
                return arguments
            if isinstance(inner, str) and inner.lstrip().startswith("{"):
                return inner
        return arguments
    if arguments is None:
        return ""
    return json.dumps(arguments, ensure_ascii=False)


def _read_call(call: Any) -> tuple[str | None, str, str]:
    """(the server's id, name, arguments as JSON text) of one tool call as sent; a flat call without a `function`
    object is read from its own fields. A call with no string name comes back as MALFORMED_CALL_NAME, with the
    JSON of what it held, so that the caller can say what is missing."""
    if not isinstance(call, dict):
        return None, MALFORMED_CALL_NAME, json.dumps(call, ensure_ascii=False)
    function = call.get("function")
    function = function if isinstance(function, dict) else call
    call_id = call.get("id")
    original_id = call_id if isinstance(call_id, str) else None if call_id is None else json.dumps(call_id)
    name, arguments = function.get("name"), function.get("arguments")
    if not isinstance(name, str):
        shown = {"name": name, "arguments": arguments} if "name" in function else {"arguments": arguments}
        return original_id, MALFORMED_CALL_NAME, json.dumps(shown, ensure_ascii=False)
    return original_id, name, _arguments_text(arguments)


def _tool_call_ids(messages: list[dict[str, Any]]) -> set[str]:
    """The tool-call ids already in a conversation (the assistant messages' calls)."""
    return {
        call.get("id")
        for message in messages
        if message.get("tool_calls")
        for call in message["tool_calls"]
        if isinstance(call, dict)
    }


def _with_unique_ids(
    calls: list[tuple[str | None, str, str]], used_ids: set[str], events: list[str], native: bool
) -> tuple[ToolCall, ...]:
    """ToolCalls whose ids are unique in the conversation: the server's where it is usable, else the next free local
    one (deterministic, so a replayed conversation gets the same ids). Each native id replaced is an event."""
    taken = set(used_ids)
    counter = itertools.count(len(taken))
    tool_calls = []
    for original_id, name, arguments in calls:
        call_id = original_id
        if not call_id or call_id in taken:
            call_id = next(f"{LOCAL_ID_PREFIX}{n}" for n in counter if f"{LOCAL_ID_PREFIX}{n}" not in taken)
            if native:
                events.append(TOOL_CALL_ID_REPLACED)
        taken.add(call_id)
        tool_calls.append(ToolCall(id=call_id, name=name, arguments=arguments, original_id=original_id))
    return tuple(tool_calls)


def _count(value: Any) -> int | None:
    """A token count as sent: a non-negative integer (an integral float accepted); anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _usage(usage: Any) -> tuple[int | None, int | None, int | None, int | None]:
    """(prompt, completion, reasoning, provider-cached prompt) tokens; the first two None together when the usage is
    missing or unusable. A usage of 0 prompt and 0 completion tokens is a placeholder (every chat has a prompt)."""
    if not isinstance(usage, dict):
        return None, None, None, None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    if prompt is None or completion is None or prompt == completion == 0:
        return None, None, None, None
    prompt_details, completion_details = usage.get("prompt_tokens_details"), usage.get("completion_tokens_details")
    reasoning = _count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else None
    cached = _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None
    return prompt, completion, reasoning, None if cached is None else min(cached, prompt)


class StreamedToolCalls:
    """Tool calls put together from streamed deltas.

    A delta belongs to the call with its `index`; without one, to the call with its `id`; without either, to the
    last call. It starts a new call instead when its id differs from that call's, or when it brings a name and that
    call already has one and either another name or complete JSON arguments (servers that reuse an index, or send
    none, for several calls). A call's name is expected whole in one delta, as OpenAI sends it.
    """

    def __init__(self) -> None:
        self._calls: list[dict[str, Any]] = []

    def add(self, piece: Any) -> None:
        """Add one element of a delta's `tool_calls` (anything but an object is ignored)."""
        if not isinstance(piece, dict):
            return
        function = piece.get("function")
        function = function if isinstance(function, dict) else {}
        index = piece.get("index") if type(piece.get("index")) is int else None
        call_id = piece.get("id") if isinstance(piece.get("id"), str) and piece.get("id") else None
        name = function.get("name") if isinstance(function.get("name"), str) and function.get("name") else None
        call = self._find(index, call_id)
        if call is None or self._starts_another(call, call_id, name):
            call = {"index": index, "id": None, "name": None, "arguments": []}
            self._calls.append(call)
        call["id"] = call["id"] or call_id
        call["name"] = call["name"] or name
        if function.get("arguments") is not None:
            call["arguments"].append(function["arguments"])

    def _find(self, index: int | None, call_id: str | None) -> dict[str, Any] | None:
        if index is not None:
            return next((c for c in reversed(self._calls) if c["index"] == index), None)
        if call_id is not None:
            return next((c for c in reversed(self._calls) if c["id"] == call_id), None)
        return self._calls[-1] if self._calls else None

    @staticmethod
    def _starts_another(call: dict[str, Any], call_id: str | None, name: str | None) -> bool:
        if call_id and call["id"] and call_id != call["id"]:
            return True
        if not (name and call["name"]):
            return False
        return name != call["name"] or _is_json_object(_joined(call["arguments"]))

    def assembled(self) -> list[dict[str, Any]]:
        """The calls in the order they started, shaped like a non-streamed reply's `tool_calls`."""
        return [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": _joined(c["arguments"])}}
            for c in self._calls
        ]


def _joined(parts: list[Any]) -> Any:
    """Streamed argument pieces as one value: a lone non-string piece as it is, else the pieces' text joined."""
    if len(parts) == 1:
        return parts[0]
    return "".join(part if isinstance(part, str) else json.dumps(part, ensure_ascii=False) for part in parts) or None


def _is_json_object(text: Any) -> bool:
    if not isinstance(text, str):
        return text is not None
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
