"""On-disk cache (SQLite) of model calls that can be replayed exactly (greedy, or seeded samples, each sample by its
index), keyed on everything that decides the reply except the API key."""

import hashlib
import json
import sqlite3
import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from delegate.models.base import (
    TOOL_CHOICE_AUTO,
    ChatModel,
    ChatRequest,
    ChatResponse,
    GenerateConfig,
    GenerationDefaults,
    TextSink,
    ToolCall,
    effective_config,
)

# Settings that change how a call is made or billed, never what it returns: not part of the key.
NOT_IN_KEY = {
    "name",
    "price_input_usd_per_1m",
    "price_cached_input_usd_per_1m",
    "price_output_usd_per_1m",
    "api_key_env",
    "timeout_s",
    "max_retries",
    "retry_backoff_s",
    "retry_max_backoff_s",
    "max_requests_in_flight",
    "max_batch_size",
    "batch_wait_ms",
}


def model_identity(cfg: Any) -> dict[str, Any]:
    """The parts of a model config that decide its replies (backend, base_url, model, generation settings)."""
    return {k: v for k, v in asdict(cfg).items() if k not in NOT_IN_KEY}


def is_cacheable(settings: GenerateConfig) -> bool:
    """Whether a call with these (effective) settings can be replayed: greedy (temperature 0; not a served model's
    `temperature: null`, which leaves it to the server), or seeded, each sample by its index."""
    return settings.temperature == 0.0 or settings.seed is not None


def request_key(identity: dict[str, Any], request: ChatRequest) -> str:
    """SHA-256 (hex) of the request's JSON. What a request did not always have enters the key only when it can
    change the reply, so keys made before it existed still match the calls they cached: `tool_choice` when tools are
    given and it is not `auto`, the generation overrides that are set, a sample index other than 0."""
    key: dict[str, Any] = {"model": identity, "messages": request.messages, "tools": request.tools}
    if request.tools and request.tool_choice != TOOL_CHOICE_AUTO:
        key["tool_choice"] = request.tool_choice
    if overrides := {name: value for name, value in request.config.overridden().items() if name not in NOT_IN_KEY}:
        key["config"] = overrides
    if request.sample_index:
        key["sample_index"] = request.sample_index
    payload = json.dumps(key, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def is_empty(response: ChatResponse) -> bool:
    """No text (whitespace aside) and no tool calls: never stored, and a stored one (written by an older version) is
    a miss, so a server's transient empty reply is not replayed once it recovers."""
    return not response.text.strip() and not response.tool_calls


class ResponseCache:
    """A key → ChatResponse table; safe to share between the event loop and worker threads."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        stored = json.loads(row[0])
        # JSON has no tuples; usage left unreported is stored as null and replayed as missing.
        tool_calls = tuple(ToolCall(**c) for c in stored["tool_calls"])
        return ChatResponse(**stored | {"tool_calls": tool_calls, "events": tuple(stored.get("events", ()))})

    def put(self, key: str, response: ChatResponse) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, response) VALUES (?, ?)", (key, json.dumps(asdict(response)))
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedModel:
    """A backend behind the cache: a hit returns the stored reply, with the tokens and latency it cost when made.
    `cfg` is the model's typed config: its identity keys the calls, its defaults decide with each request's
    overrides whether a call can be replayed (`is_cacheable`); calls that can't pass straight through. Failed calls
    and empty replies (`is_empty`) are not stored."""

    def __init__(self, model: ChatModel, cache: ResponseCache, cfg: GenerationDefaults):
        self._model = model
        self._cache = cache
        self._cfg = cfg
        self._identity = model_identity(cfg)

    async def chat(self, request: ChatRequest, on_text: TextSink | None = None) -> ChatResponse:
        if not is_cacheable(effective_config(self._cfg, request.config)):
            return await self._model.chat(request, on_text)
        key = request_key(self._identity, request)
        stored = self._cache.get(key)
        if stored is not None and not is_empty(stored):
            if on_text is not None:
                on_text(stored.text)
            return replace(stored, cache_hit=True)
        response = await self._model.chat(request, on_text)
        if not is_empty(response):
            self._cache.put(key, response)
        return response

    async def aclose(self) -> None:
        await self._model.aclose()
