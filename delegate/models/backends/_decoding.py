"""How an in-process `generate` decodes a GenerateConfig: greedy or sampled (seeded per sample index, reproducible
whatever else runs in the process), and where stop texts end a reply. torch is imported only to seed it."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from delegate.models.base import GenerateConfig, sample_seed

# Held from seeding the process's random generators to the end of a sampled generate: two sampled generates (on any
# weights) never draw from the same seeded stream.
_sampling_lock = threading.Lock()


@contextmanager
def seeded(settings: GenerateConfig, sample_index: int) -> Iterator[None]:
    """Around a sampled generate with a seed: torch's generators seeded with `sample_seed` (and put back as they were
    after), under `_sampling_lock`. Greedy and unseeded generates draw no seed."""
    if not settings.temperature or settings.seed is None:
        yield
        return
    import torch

    with _sampling_lock, torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(sample_seed(settings.seed, sample_index))
        yield


def decoding_options(settings: GenerateConfig) -> dict[str, Any]:
    """`generate`'s decoding arguments: greedy at temperature 0, else sampling at that temperature (and top_p when
    set; the model's own generation config fills in the rest)."""
    if not settings.temperature:
        return {"do_sample": False}
    options = {"do_sample": True, "temperature": settings.temperature}
    return options if settings.top_p is None else options | {"top_p": settings.top_p}


def cut_at_stop(text: str, stop: tuple[str, ...] | None) -> str:
    """`text` up to the first of the `stop` texts in it (all of it when none is)."""
    ends = [text.find(s) for s in stop or () if s in text]
    return text[: min(ends)] if ends else text
