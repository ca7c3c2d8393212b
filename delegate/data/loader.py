"""Load a split through `datasets` (Hub, local JSON-lines, or a built-in file) and draw a seeded sample."""

import random
from pathlib import Path

from delegate.config.schema import DataConfig
from delegate.data.problem import Problem, parse_gold
from delegate.errors import ConfigError

BUILTIN_DIR = Path(__file__).parent / "builtin"


def _read_rows(cfg: DataConfig):
    import datasets

    datasets.disable_progress_bars()
    if cfg.path is not None or cfg.builtin is not None:
        path = Path(cfg.path).expanduser() if cfg.path is not None else BUILTIN_DIR / cfg.builtin
        if not path.is_file():
            setting = f"data.path={cfg.path}" if cfg.path is not None else f"data.builtin={cfg.builtin}"
            raise ConfigError(f"{setting}: no such file; give an existing JSON-lines file")
        return datasets.load_dataset("json", data_files=str(path.resolve()), split="train")
    try:
        return datasets.load_dataset(cfg.hub_path, cfg.hub_name, split=cfg.split)
    except (ConnectionError, OSError, ValueError) as error:
        raise ConfigError(
            f"data.hub_path={cfg.hub_path}: could not load split {cfg.split!r} from the Hugging Face Hub "
            f"({type(error).__name__}); offline, set data.path=<file.jsonl> or use data=sample"
        ) from error


def dataset_id(cfg: DataConfig) -> str:
    """The split's name in records and reports, e.g. 'gsm8k/test': `data.name`, then the local file's stem, the
    built-in file's stem, or the Hub split. Runs pair up problem by problem only when these (and the ids) match."""
    source = cfg.path or cfg.builtin
    return f"{cfg.name}/{Path(source).stem if source else cfg.split}"


def load_problems(cfg: DataConfig, samples: int | None, seed: int) -> list[Problem]:
    """All problems of the split, or `samples` of them drawn with `seed` (the same ones every time), in id order."""
    rows = _read_rows(cfg)
    for field in (cfg.question_field, cfg.answer_field):
        if field not in rows.column_names:
            raise ConfigError(f"data: the dataset has no field {field!r} (it has {rows.column_names}); set data.question_field / data.answer_field")
    ids = list(range(len(rows)))
    if samples is not None:
        if not 0 < samples <= len(ids):
            raise ConfigError(f"samples={samples}: data={cfg.name} has {len(ids)} problems; use 1..{len(ids)} or samples=null for all")
        ids = sorted(random.Random(seed).sample(ids, samples))
    questions = list(rows[cfg.question_field])
    answers = list(rows[cfg.answer_field])
    dataset = dataset_id(cfg)
    try:
        return [
            Problem(id=i, question=questions[i], gold=parse_gold(str(answers[i]), cfg.gold_marker), dataset=dataset)
            for i in ids
        ]
    except ValueError as error:
        raise ConfigError(
            f"data.gold_marker={cfg.gold_marker!r}: {error}; set data.gold_marker=null to use the whole answer field"
        ) from None
