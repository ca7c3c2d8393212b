"""Backend that runs a causal LM in-process with transformers: chat template, greedy or seeded sampled decoding,
tokenizer counts. torch and transformers are imported when a model loads or generates, not with this module."""

import asyncio
import functools
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig

from delegate.config.bounds import Bound, bounded, check_bounds
from delegate.config.schema import ModelConfig
from delegate.errors import ConfigError
from delegate.models.backends import BACKENDS
from delegate.models.backends._decoding import cut_at_stop, decoding_options, seeded
from delegate.models.backends._local_weights import (
    check_device,
    check_weights,
    resolve_device,
    resolve_dtype,
    resolve_model_path,
)
from delegate.models.base import (
    TOOL_CHOICE_NONE,
    TOOL_CHOICE_REQUIRED,
    ChatRequest,
    ChatResponse,
    GenerateConfig,
    TextSink,
    effective_config,
)
from delegate.models.hermes import inline_tools, parse_tool_calls


@dataclass
class TransformersModelConfig(ModelConfig):
    backend: str = "transformers"
    gguf_file: Optional[str] = None
    device: str = "auto"
    dtype: str = "auto"
    max_new_tokens: int = bounded(512, Bound(1))
    # Concurrent calls are gathered into one left-padded generate: up to this many (1 = no batching) ...
    max_batch_size: int = bounded(8, Bound(1))
    # ... waiting at most this long for companions once the first call arrives.
    batch_wait_ms: float = bounded(20.0, Bound(0))
    # For chat templates that ignore `tools`: appended to the system message, `{tools}` replaced by their JSON;
    # calls are then read back as Hermes <tool_call> blocks. Null: rely on the chat template.
    tool_prompt: Optional[str] = None

    def generate_defaults(self) -> GenerateConfig:
        """Greedy, up to `max_new_tokens`: what a call does when its request overrides nothing."""
        return GenerateConfig(max_tokens=self.max_new_tokens, temperature=0.0)


@dataclass(frozen=True)
class LoadedModel:
    tokenizer: Any
    model: Any
    device: str
    # One generate at a time on these weights, whichever roles share them: the CPU threads are all in use by one.
    generate_lock: threading.Lock = field(default_factory=threading.Lock)


_loaded: dict[tuple, LoadedModel] = {}
_loading_lock = threading.Lock()


@contextmanager
def gguf_progress_bar_off() -> Iterator[None]:
    """No "Converting and de-quantizing GGUF tensors" bar at every load: transformers' GGUF loader calls tqdm
    itself, which `disable_progress_bar()` does not reach (transformers 5.24), so that module's `tqdm` is given
    `disable=True` while the weights load (under `_loading_lock`)."""
    from transformers import modeling_gguf_pytorch_utils as gguf_loading

    bar = getattr(gguf_loading, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_loading.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_loading.tqdm = bar


def load_model(cfg: TransformersModelConfig, role: str) -> LoadedModel:
    """Load weights once per process and share them between roles, jobs and calls."""
    device = resolve_device(cfg.device)
    key = (cfg.model, cfg.gguf_file, device, cfg.dtype)
    with _loading_lock:
        if key not in _loaded:
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as transformers_logging

            # Weight-conversion bars would interleave with the run's own progress bar.
            transformers_logging.disable_progress_bar()
            path = resolve_model_path(cfg.model, role)
            options = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
            if Path(path).is_dir():
                # A local folder needs nothing from the Hub: don't let it wait on network retries.
                options["local_files_only"] = True
            tokenizer = AutoTokenizer.from_pretrained(path, **options)
            with gguf_progress_bar_off():
                model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(cfg.dtype, device), **options)
            model.to(device).eval()
            _loaded[key] = LoadedModel(tokenizer=tokenizer, model=model, device=device)
    return _loaded[key]


def _template_message(message: dict[str, Any]) -> dict[str, Any]:
    """Chat templates (Qwen2.5's among them) expect tool-call arguments as objects, not the JSON text OpenAI uses."""
    if not message.get("tool_calls"):
        return message
    calls = []
    for call in message["tool_calls"]:
        function = dict(call["function"])
        try:
            function["arguments"] = json.loads(function["arguments"])
        except (TypeError, ValueError):
            pass  # malformed arguments are shown to the model as it wrote them
        calls.append({**call, "function": function})
    return {**message, "tool_calls": calls}


def tool_call_opening(tools: list[dict[str, Any]]) -> str:
    """The opening of a Hermes tool call, written for the model so that it must finish one (`tool_choice=required`).

    One tool with a single string argument: up to that argument's opening quote, so the model writes only its
    value (`<tool_call>\n{"name": "ask", "arguments": {"question": "`); one tool otherwise: up to the arguments'
    brace; several tools: up to the name's quote, so the model picks the tool.
    """
    opening = '<tool_call>\n{"name": "'
    if len(tools) != 1:
        return opening
    function = tools[0]["function"]
    opening += json.dumps(function["name"])[1:-1] + '", "arguments": {'
    properties = (function.get("parameters") or {}).get("properties") or {}
    if len(properties) == 1:
        [(argument, schema)] = properties.items()
        if schema.get("type") == "string":
            opening += json.dumps(argument) + ': "'
    return opening


# The end of a JSON string's text: the first quote that no backslash escapes.
_STRING_END = re.compile(r'(?<!\\)(?:\\\\)*"')


def forced_call_text(opening: str, generated: str) -> str:
    """The reply to read when the model was given `opening`. When that opening leaves a string argument open, the
    call is that argument's text up to its closing quote (all of it when generation stopped first), closed there:
    what a small model writes after the value (keys the tool does not have, prose) is not part of the call; text
    after a `</tool_call>` stays the reply's content. Otherwise `opening + generated` as it is."""
    if not opening.endswith('": "'):
        return opening + generated
    end = _STRING_END.search(generated)
    if end is None:
        return f'{opening}{generated}"}}}}\n</tool_call>'
    value_end = end.end() - 1
    after = generated[value_end:].partition("</tool_call>")[2]
    return f'{opening}{generated[:value_end]}"}}}}\n</tool_call>{after}'


@dataclass
class _Pending:
    """A prompt waiting to join a batch, and where its result goes."""

    prompt_ids: list[int]
    result: asyncio.Future


@BACKENDS.register("transformers")
class TransformersModel:
    """Chat on in-process weights. Calls that override nothing (greedy, `max_new_tokens`) are gathered into one
    left-padded `generate`; any other call (sampled, another token bound, stop texts) generates alone, so that a
    sampled reply depends only on its request (seed, sample index, messages), never on what runs beside it."""

    schema = TransformersModelConfig
    _call_ids = itertools.count()

    def __init__(self, cfg: TransformersModelConfig, role: str):
        self.cfg = cfg
        self.role = role
        self._loop: asyncio.AbstractEventLoop | None = None
        self._defaults = cfg.generate_defaults()

    @classmethod
    def setting_checks(cls, cfg: DictConfig, role: str) -> dict[str, Callable[[], str]]:
        """The role's numbers, the device and dtype it would load on, and that its weights can be had."""
        return {
            "settings": lambda: check_local_settings(cfg[role], role),
            "device": lambda: check_device(cfg, role),
            "weights": lambda: check_weights(cfg, role),
        }

    def _bind_to_running_loop(self) -> None:
        """Locks, queues and tasks belong to one event loop: make them anew when called from another one."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop = loop
        # Calls wait here, not in a worker thread each, while one generate runs.
        self._generate_lock = asyncio.Lock()
        self._pending: asyncio.Queue[_Pending] = asyncio.Queue()
        self._batcher: asyncio.Task | None = None

    def _template_messages(self, loaded: LoadedModel, messages: list[dict[str, Any]], tools) -> list[dict[str, Any]]:
        """Messages as this model's chat template can render them, tool calls and results included."""
        if "tools" in (loaded.tokenizer.chat_template or ""):
            return [_template_message(m) for m in messages]
        if self.cfg.tool_prompt is None:
            if tools:
                raise ConfigError(
                    f"{self.role}.tool_prompt: the chat template of {self.cfg.model} ignores tools; "
                    f"set {self.role}.tool_prompt (see delegate/conf/model/local.yaml) or use a model whose template takes tools"
                )
            return messages
        return inline_tools(messages, tools, self.cfg.tool_prompt)

    def _prompt_ids(self, loaded: LoadedModel, messages: list[dict[str, Any]], tools, opening: str = "") -> list[int]:
        """The chat template's prompt, ending with the assistant's header and then `opening` (text the reply is made
        to start with), as token ids: all of them are prompt tokens."""
        prompt = loaded.tokenizer.apply_chat_template(
            self._template_messages(loaded, messages, tools), tools=tools, add_generation_prompt=True, tokenize=False
        )
        return loaded.tokenizer(prompt + opening, add_special_tokens=False)["input_ids"]

    def _generate_batch(
        self,
        prompts: list[list[int]],
        settings: GenerateConfig,
        sample_index: int = 0,
        on_token_text: TextSink | None = None,
    ) -> list[tuple[str, int, int]]:
        """(text, prompt tokens, completion tokens) per prompt, from one left-padded `generate` with `settings`
        (greedy or sampled, see `decoding_options`; seeded by `seeded`), the text cut at its first stop text."""
        import torch
        from transformers import TextStreamer

        loaded = load_model(self.cfg, self.role)
        tokenizer = loaded.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=loaded.device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=loaded.device)
        streamer = None
        if on_token_text is not None:
            streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
            streamer.on_finalized_text = lambda text, stream_end=False: text and on_token_text(text)
        options = decoding_options(settings)
        if settings.stop:
            options |= {"stop_strings": list(settings.stop), "tokenizer": tokenizer}
        with loaded.generate_lock, seeded(settings, sample_index), torch.inference_mode():
            output = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=settings.max_tokens,
                pad_token_id=pad_id,
                streamer=streamer,
                **options,
            )
        eos_ids = loaded.model.generation_config.eos_token_id
        eos_ids = set(eos_ids if isinstance(eos_ids, list) else [eos_ids]) | {tokenizer.eos_token_id}
        results = []
        for prompt, row in zip(prompts, output[:, width:].tolist()):
            # A row that finished early is padded to the longest: count up to and including its first EOS.
            length = next((i + 1 for i, token in enumerate(row) if token in eos_ids), len(row))
            text = cut_at_stop(tokenizer.decode(row[:length], skip_special_tokens=True), settings.stop)
            results.append((text, len(prompt), length))
        return results

    async def _run_batches(self) -> None:
        """Gather pending prompts (up to max_batch_size, waiting at most batch_wait_ms) and generate them together."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._pending.get()]
            deadline = loop.time() + self.cfg.batch_wait_ms / 1000
            while len(batch) < self.cfg.max_batch_size and (wait_s := deadline - loop.time()) > 0:
                try:
                    batch.append(await asyncio.wait_for(self._pending.get(), wait_s))
                except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                    break
            try:
                async with self._generate_lock:
                    prompts = [p.prompt_ids for p in batch]
                    results = await asyncio.to_thread(self._generate_batch, prompts, self._defaults)
            except Exception as error:  # noqa: BLE001 - every caller in the batch gets the failure
                for pending in batch:
                    if not pending.result.done():
                        pending.result.set_exception(error)
                continue
            for pending, result in zip(batch, results):
                if not pending.result.done():
                    pending.result.set_result(result)

    async def _generate(
        self, prompt_ids: list[int], settings: GenerateConfig, sample_index: int, on_text: TextSink | None
    ) -> tuple[str, int, int]:
        """(text, prompt tokens, completion tokens): batched with other calls when this one overrides nothing and
        streams nothing, else generated alone."""
        if on_text is not None or self.cfg.max_batch_size <= 1 or settings != self._defaults:
            on_token_text = None
            if on_text is not None:
                loop = asyncio.get_running_loop()
                # generate runs in a worker thread; hand its text to the loop's thread, in order.
                on_token_text = lambda text: loop.call_soon_threadsafe(on_text, text)  # noqa: E731
            async with self._generate_lock:
                [result] = await asyncio.to_thread(
                    self._generate_batch, [prompt_ids], settings, sample_index, on_token_text
                )
            return result
        if self._batcher is None:
            self._batcher = asyncio.create_task(self._run_batches())
        pending = _Pending(prompt_ids, asyncio.get_running_loop().create_future())
        await self._pending.put(pending)
        return await pending.result

    async def chat(self, request: ChatRequest, on_text: TextSink | None = None) -> ChatResponse:
        """The reply to `request` with the model's settings and the request's overrides (`effective_config`): greedy
        at temperature 0 (the default), else sampled, reproducibly when seeded (see `seeded`); `timeout_s` does not
        apply in-process. With tools, `tool_choice=required` starts the reply with the opening of a tool call
        (`tool_call_opening`), which the model completes: that opening counts as prompt tokens, the completion tokens
        are only those generated; `none` reads no calls from the reply (what it writes stays text)."""
        settings = effective_config(self.cfg, request.config)
        messages, tools, tool_choice = request.messages, request.tools, request.tool_choice
        self._bind_to_running_loop()
        loaded = await asyncio.to_thread(load_model, self.cfg, self.role)
        opening = tool_call_opening(tools) if tools and tool_choice == TOOL_CHOICE_REQUIRED else ""
        if opening and on_text is not None:
            on_text(opening)
        # Timed from here: loading the weights (once per process) is not part of any call's latency.
        started_s = time.perf_counter()
        prompt_ids = self._prompt_ids(loaded, messages, tools, opening)
        generated, prompt_tokens, completion_tokens = await self._generate(
            prompt_ids, settings, request.sample_index, on_text
        )
        latency_s = time.perf_counter() - started_s
        text = forced_call_text(opening, generated) if opening else generated
        tool_calls: tuple = ()
        if tools and tool_choice != TOOL_CHOICE_NONE:
            text, tool_calls = parse_tool_calls(text, id_prefix=f"call_{next(self._call_ids)}")
        return ChatResponse(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=latency_s,
            tool_calls=tool_calls,
            finish_reason="tool_calls"
            if tool_calls
            else "length"
            if completion_tokens >= settings.max_tokens
            else "stop",
        )

    async def aclose(self) -> None:
        """Stop the batcher; weights stay loaded for the next job in this process."""
        if self._loop is not None and self._batcher is not None:
            self._batcher.cancel()
            self._batcher = None


def check_local_settings(model_cfg: DictConfig, role: str) -> str:
    """The role's numbers within their bounds (the schema's)."""
    check_bounds(model_cfg, TransformersModelConfig, f"{role}.")
    return f"{model_cfg.model}, max_new_tokens={model_cfg.max_new_tokens}, max_batch_size={model_cfg.max_batch_size}"
