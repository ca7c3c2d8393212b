"""One request object: a call's generation overrides merged over its model's settings, the same for every backend."""

import pytest

from delegate.models.backends.openai_compatible import OpenAIModelConfig
from delegate.models.backends.transformers_local import TransformersModelConfig
from delegate.models.base import ChatRequest, GenerateConfig, effective_config

SERVED = OpenAIModelConfig(name="served", model="m", max_tokens=300, temperature=0.0, timeout_s=60.0)
LOCAL = TransformersModelConfig(name="local", model="m", max_new_tokens=128)


def test_a_request_that_overrides_nothing_runs_with_the_model_settings():
    assert effective_config(SERVED, GenerateConfig()) == GenerateConfig(max_tokens=300, temperature=0.0, timeout_s=60.0)
    # In-process: `max_new_tokens` is the token bound, and decoding is greedy.
    assert effective_config(LOCAL, GenerateConfig()) == GenerateConfig(max_tokens=128, temperature=0.0)


@pytest.mark.parametrize("model_cfg", [SERVED, LOCAL], ids=["openai", "transformers"])
def test_each_override_that_is_set_wins_and_the_rest_stay_the_model_s(model_cfg):
    defaults = effective_config(model_cfg, GenerateConfig())
    overrides = GenerateConfig(temperature=0.7, top_p=0.95, seed=3, stop=("\n",))
    merged = effective_config(model_cfg, overrides)
    assert (merged.temperature, merged.top_p, merged.seed, merged.stop) == (0.7, 0.95, 3, ("\n",))
    assert (merged.max_tokens, merged.timeout_s) == (defaults.max_tokens, defaults.timeout_s)
    assert effective_config(model_cfg, GenerateConfig(max_tokens=9)).max_tokens == 9


def test_an_override_of_zero_is_an_override_and_a_null_model_temperature_stays_null():
    sampled = OpenAIModelConfig(name="s", model="m", temperature=0.8)
    assert effective_config(sampled, GenerateConfig(temperature=0.0)).temperature == 0.0
    assert (
        effective_config(OpenAIModelConfig(name="r", model="m", temperature=None), GenerateConfig()).temperature is None
    )


def test_overridden_lists_the_settings_that_are_set_in_json_shapes():
    assert GenerateConfig().overridden() == {}
    assert GenerateConfig(seed=1, stop=("a", "b")).overridden() == {"seed": 1, "stop": ["a", "b"]}


def test_a_request_defaults_to_the_first_sample_with_no_overrides():
    request = ChatRequest([{"role": "user", "content": "hi"}])
    assert (request.tools, request.tool_choice, request.config, request.sample_index) == (
        None,
        "auto",
        GenerateConfig(),
        0,
    )
