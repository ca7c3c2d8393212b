"""Read a split (a local or built-in JSON-lines file, or a Hub dataset through `datasets`), check every row, and draw
a seeded sample of the usable problems."""

import json
import logging
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from delegate.config.schema import DataConfig
from delegate.data.problem import Problem, gold_is_number, parse_gold
from delegate.errors import ConfigError

BUILTIN_DIR = Path(__file__).parent / "builtin"
# A row's fields are listed in an error line up to this many.
MAX_FIELDS_LISTED = 10
# What a JSON value is called in an error line, by its Python type.
JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false", type(None): "null"}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Problems of a split in id order (every usable one, or a drawn sample of them), and the rows left out because
    their gold answer is not a number: how many, and where the first is ("line 7" of a file, "row 7" of a Hub split)."""

    problems: list[Problem]
    n_skipped: int = 0
    first_skipped: str | None = None


@dataclass(frozen=True)
class _Row:
    where: str  # "line 3" of a file, "row 3" of a Hub split: what an error line names
    fields: dict[str, Any]


def _source_setting(cfg: DataConfig) -> str:
    """The setting that names the split's source, as an error line shows it."""
    if cfg.path is not None:
        return f"data.path={cfg.path}"
    if cfg.builtin is not None:
        return f"data.builtin={cfg.builtin}"
    return f"data.hub_path={cfg.hub_path}"


def _file_rows(path: Path, setting: str) -> list[_Row]:
    """Each non-blank line of a JSON-lines file as a row, read with the json module (a README or a CSV is one error
    line, not a traceback). Raises ConfigError naming the file's first line that is not a JSON object."""
    rows = []
    number = 0
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    fields = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as error:
                    why = f"{error.msg} at column {error.colno}"
                    if not rows:
                        raise ConfigError(f"{setting}: not a JSON-lines file (line {number}: {why}); "
                                          "give a file with one JSON object per line") from None
                    raise ConfigError(f"{setting}: line {number} is not valid JSON ({why}); "
                                      "fix that line (one JSON object per line)") from None
                if not isinstance(fields, dict):
                    raise ConfigError(f"{setting}: line {number} is {JSON_KINDS.get(type(fields), 'not an object')}, "
                                      "not a JSON object; give a file with one JSON object per line")
                rows.append(_Row(f"line {number}", fields))
    except UnicodeDecodeError:
        raise ConfigError(f"{setting}: not a JSON-lines file (line {number + 1} is not UTF-8 text); "
                          "give a file with one JSON object per line") from None
    except OSError as error:
        raise ConfigError(f"{setting}: cannot be read ({error.strerror}); give a readable JSON-lines file") from None
    if not rows:
        raise ConfigError(f"{setting}: the file is empty; give a JSON-lines file with one problem per line")
    return rows


@lru_cache(maxsize=4)
def _hub_dataset(hub_path: str, hub_name: str | None, split: str):
    """A Hub split through `datasets` (its own cache on disk), kept for the process: the settings check and the job
    both read it."""
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset(hub_path, hub_name, split=split)


def _hub_rows(cfg: DataConfig) -> list[_Row]:
    try:
        dataset = _hub_dataset(cfg.hub_path, cfg.hub_name, cfg.split)
    except (ConnectionError, OSError, ValueError) as error:
        raise ConfigError(
            f"data.hub_path={cfg.hub_path}: could not load split {cfg.split!r} from the Hugging Face Hub "
            f"({type(error).__name__}); offline, set data.path=<file.jsonl> or use data=sample"
        ) from error
    if len(dataset) == 0:
        raise ConfigError(f"data.hub_path={cfg.hub_path}: split {cfg.split!r} has no rows; set data.split to another split")
    return [_Row(f"row {index + 1}", fields) for index, fields in enumerate(dataset.to_list())]


def _read_rows(cfg: DataConfig, setting: str) -> list[_Row]:
    if cfg.path is None and cfg.builtin is None:
        return _hub_rows(cfg)
    path = Path(cfg.path).expanduser() if cfg.path is not None else BUILTIN_DIR / cfg.builtin
    if not path.is_file():
        raise ConfigError(f"{setting}: no such file; give an existing JSON-lines file")
    return _file_rows(path, setting)


def _check_field(rows: list[_Row], field: str, setting: str, which: str) -> None:
    """Every row has `field` (not null). When none has it, the setting naming it is wrong; when only some lack it,
    those rows are: the line says which fix applies."""
    lacking = [row for row in rows if row.fields.get(field) is None]
    if not lacking:
        return
    if len(lacking) == len(rows):
        first = rows[0]
        found = ", ".join(list(first.fields)[:MAX_FIELDS_LISTED]) or "no fields"
        raise ConfigError(f"{setting}: no row has a {field!r} field ({first.where} has {found}); "
                          f"set data.{which}_field to the field that holds the {which}")
    noun = lacking[0].where.split()[0]
    raise ConfigError(f"{setting}: {lacking[0].where} has no {field!r} field, which the other rows have; "
                      f"fix that {noun} (or remove it)")


def read_split(cfg: DataConfig) -> Split:
    """Every usable problem of the configured split, checked row by row; nothing is printed (see `load_split`).

    Ids are row indexes in the split (0-based, blank lines not counted), so a problem keeps its id whatever is
    skipped or drawn. Rows whose gold answer is not a number are left out and counted. Raises ConfigError, one line
    naming the setting, the line and the fix: a missing file, a file that is not JSON lines, an empty one, a broken
    line, a row that is not an object, a row without the question or answer field, a gold marker no row has, or no
    usable row at all.
    """
    setting = _source_setting(cfg)
    rows = _read_rows(cfg, setting)
    _check_field(rows, cfg.question_field, setting, "question")
    _check_field(rows, cfg.answer_field, setting, "answer")
    answers = [str(row.fields[cfg.answer_field]) for row in rows]
    if cfg.gold_marker is not None and not any(cfg.gold_marker in answer for answer in answers):
        raise ConfigError(f"data.gold_marker={cfg.gold_marker!r}: no answer in {setting} has it "
                          f"({rows[0].where}: {answers[0][-60:]!r}); set data.gold_marker=null to use the whole answer field")
    dataset = dataset_id(cfg)
    problems, skipped = [], []
    for index, (row, answer) in enumerate(zip(rows, answers)):
        # A row without the marker, in a split whose other rows have it, has no gold to read: it is skipped too.
        gold = parse_gold(answer, cfg.gold_marker) if cfg.gold_marker is None or cfg.gold_marker in answer else ""
        if gold_is_number(gold):
            problems.append(Problem(id=index, question=str(row.fields[cfg.question_field]), gold=gold, dataset=dataset))
        else:
            skipped.append(row.where)
    if not problems:
        raise ConfigError(f"{setting}: no row's gold answer is a number ({rows[0].where}: {answers[0][-60:]!r}); "
                          f"check data.answer_field={cfg.answer_field} and data.gold_marker")
    return Split(problems, len(skipped), skipped[0] if skipped else None)


def draw_sample(split: Split, samples: int | None, seed: int, cfg: DataConfig) -> Split:
    """`samples` of the split's usable problems drawn with `seed` (the same ones every time), in id order; all of
    them for None. Raises ConfigError, naming the split's source in `cfg`, when `samples` is not in 1..the number of
    usable problems."""
    if samples is None:
        return split
    ids = [problem.id for problem in split.problems]
    if not 0 < samples <= len(ids):
        usable = f"{len(ids)} usable problems ({split.n_skipped} skipped)" if split.n_skipped else f"{len(ids)} problems"
        raise ConfigError(f"samples={samples}: {_source_setting(cfg)} has {usable}; use 1..{len(ids)} or samples=null for all")
    drawn = set(random.Random(seed).sample(ids, samples))
    return Split([p for p in split.problems if p.id in drawn], split.n_skipped, split.first_skipped)


def skipped_warning(split: Split, cfg: DataConfig) -> str | None:
    """The one line that says how many rows `read_split` left out and where the first is; None when none was."""
    if not split.n_skipped:
        return None
    rows = len(split.problems) + split.n_skipped
    return (f"{_source_setting(cfg)}: {split.n_skipped} of {rows} rows skipped, gold answer not a number "
            f"(the first: {split.first_skipped}); counted as n_skipped, not scored")


def load_split(cfg: DataConfig, samples: int | None, seed: int) -> Split:
    """The problems a job solves (`draw_sample` of `read_split`), with one warning line when rows were skipped."""
    split = read_split(cfg)
    warning = skipped_warning(split, cfg)
    if warning:
        logger.warning(warning)
    return draw_sample(split, samples, seed, cfg)


def load_problems(cfg: DataConfig, samples: int | None, seed: int) -> list[Problem]:
    """The problems of `load_split` alone, for callers that do not report skipped rows."""
    return load_split(cfg, samples, seed).problems


def dataset_id(cfg: DataConfig) -> str:
    """The split's name in records and reports, e.g. 'gsm8k/test': `data.name`, then the local file's stem, the
    built-in file's stem, or the Hub split. Runs pair up problem by problem only when these (and the ids) match."""
    source = cfg.path or cfg.builtin
    return f"{cfg.name}/{Path(source).stem if source else cfg.split}"
