"""Read a split (a local, data-folder or built-in JSON-lines file, or a Hub dataset through `datasets`), check every
row, build each question from the configured fields, have the dataset's scorer read each gold, and draw a seeded
sample of the usable problems."""

import json
import logging
import os
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from delegate.config.schema import DataConfig
from delegate.data.problem import Problem, gold_text
from delegate.errors import ConfigError
from delegate.scoring import SCORERS, get_scorer
from delegate.templates import PLACEHOLDER, fill

BUILTIN_DIR = Path(__file__).parent / "builtin"
# The folder `data.file` is read from; unset: ./data of the launch directory.
DATA_DIR_ENV = "DELEGATE_DATA_DIR"
DEFAULT_DATA_DIR = "data"
# A row's fields are listed in an error line up to this many.
MAX_FIELDS_LISTED = 10
# What a JSON value is called in an error line, by its Python type.
JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Problems of a split in id order (every usable one, or a drawn sample of them), and the rows left out because
    the scorer cannot use their gold answer: how many, where the first is ("line 7" of a file, "row 7" of a Hub
    split), and why ("not a number": the scorer's `unusable_gold`)."""

    problems: list[Problem]
    n_skipped: int = 0
    first_skipped: str | None = None
    skipped_because: str = ""


@dataclass(frozen=True)
class _Row:
    where: str  # "line 3" of a file, "row 3" of a Hub split: what an error line names
    fields: dict[str, Any]


def _source_setting(cfg: DataConfig) -> str:
    """The setting that names the split's source, as an error line shows it."""
    if cfg.path is not None:
        return f"data.path={cfg.path}"
    if cfg.file is not None:
        return f"data.file={cfg.file}"
    if cfg.builtin is not None:
        return f"data.builtin={cfg.builtin}"
    return f"data.hub_path={cfg.hub_path}"


def data_dir() -> Path:
    """The folder `data.file` names a file in: $DELEGATE_DATA_DIR, else ./data (both relative to the launch
    directory unless absolute)."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def _local_file(cfg: DataConfig) -> Path | None:
    """The JSON-lines file the config names (`data.path`, else `data.file` in `data_dir()`, else the built-in
    file); None for a Hub split."""
    if cfg.path is not None:
        return Path(cfg.path).expanduser()
    if cfg.file is not None:
        return data_dir() / cfg.file
    if cfg.builtin is not None:
        return BUILTIN_DIR / cfg.builtin
    return None


def source_description(cfg: DataConfig) -> str:
    """Where the split is read from, for a line a person reads: the file, the built-in file, or the Hub split."""
    if cfg.path is not None:
        return cfg.path
    if cfg.file is not None:
        return str(data_dir() / cfg.file)
    if cfg.builtin is not None:
        return f"built-in {cfg.builtin}"
    return f"{cfg.hub_path} ({cfg.hub_name}, {cfg.split}) from the Hub"


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
                        raise ConfigError(
                            f"{setting}: not a JSON-lines file (line {number}: {why}); "
                            "give a file with one JSON object per line"
                        ) from None
                    raise ConfigError(
                        f"{setting}: line {number} is not valid JSON ({why}); fix that line (one JSON object per line)"
                    ) from None
                if not isinstance(fields, dict):
                    raise ConfigError(
                        f"{setting}: line {number} is {JSON_KINDS.get(type(fields), 'not an object')}, "
                        "not a JSON object; give a file with one JSON object per line"
                    )
                rows.append(_Row(f"line {number}", fields))
    except UnicodeDecodeError:
        raise ConfigError(
            f"{setting}: not a JSON-lines file (line {number + 1} is not UTF-8 text); "
            "give a file with one JSON object per line"
        ) from None
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
        raise ConfigError(
            f"data.hub_path={cfg.hub_path}: split {cfg.split!r} has no rows; set data.split to another split"
        )
    return [_Row(f"row {index + 1}", fields) for index, fields in enumerate(dataset.to_list())]


def _read_rows(cfg: DataConfig, setting: str) -> list[_Row]:
    path = _local_file(cfg)
    if path is None:
        return _hub_rows(cfg)
    if not path.is_file():
        if cfg.path is None and cfg.file is not None:
            where = os.environ.get(DATA_DIR_ENV)
            folder = f"{DATA_DIR_ENV}={where}" if where else f"{DATA_DIR_ENV} unset, so ./{DEFAULT_DATA_DIR}"
            raise ConfigError(
                f"{setting}: no such file in the data folder {data_dir().resolve()} ({folder}); "
                f"set {DATA_DIR_ENV} to the folder that holds {cfg.file}, or give data.path=<file.jsonl>"
            )
        raise ConfigError(f"{setting}: no such file; give an existing JSON-lines file")
    return _file_rows(path, setting)


def _check_field(rows: list[_Row], field: str, setting: str, fix: str) -> None:
    """Every row has `field` (not null). When none has it, the setting naming it is wrong (`fix` says what to do);
    when only some lack it, those rows are: the line says which fix applies."""
    lacking = [row for row in rows if row.fields.get(field) is None]
    if not lacking:
        return
    if len(lacking) == len(rows):
        first = rows[0]
        found = ", ".join(list(first.fields)[:MAX_FIELDS_LISTED]) or "no fields"
        raise ConfigError(f"{setting}: no row has a {field!r} field ({first.where} has {found}); {fix}")
    noun = lacking[0].where.split()[0]
    raise ConfigError(
        f"{setting}: {lacking[0].where} has no {field!r} field, which the other rows have; "
        f"fix that {noun} (or remove it)"
    )


def _check_question_fields(cfg: DataConfig, rows: list[_Row], setting: str) -> None:
    """Every row has the fields a question is made of: `data.question_template`'s {fields}, or
    `data.question_field`. Raises ConfigError for a template that names no field, or a field no row has."""
    if cfg.question_template is None:
        _check_field(rows, cfg.question_field, setting, "set data.question_field to the field that holds the question")
        return
    fields = list(dict.fromkeys(PLACEHOLDER.findall(cfg.question_template)))
    template = f"data.question_template={cfg.question_template!r}"
    if not fields:
        raise ConfigError(f"{template}: names no field; write the row's fields in braces, e.g. '{{Body}} {{Question}}'")
    for field in fields:
        _check_field(rows, field, setting, f"fix {template} to use the fields the file has")


def _question(cfg: DataConfig, row: _Row) -> str:
    if cfg.question_template is None:
        return str(row.fields[cfg.question_field])
    return fill(cfg.question_template, **row.fields)


def _gold_setting(cfg: DataConfig) -> tuple[str, str]:
    """(setting, field) of the gold answer: `data.gold_field` when set, else `data.answer_field` (its older name)."""
    if cfg.gold_field is not None:
        return "data.gold_field", cfg.gold_field
    return "data.answer_field", cfg.answer_field


def scorers_of(cfg: DataConfig) -> tuple[str, ...]:
    """The names of the scorers that judge the split's problems: `data.scorer`, then each of `data.scorers` not
    named before. Raises ConfigError naming the setting and the registered scorers for an unknown name."""
    names = tuple(dict.fromkeys([cfg.scorer, *cfg.scorers]))
    for name in names:
        if name not in SCORERS:
            setting = f"data.scorer={name}" if name == cfg.scorer else f"data.scorers: {name}"
            raise ConfigError(
                f"{setting} is unknown; use one of {SCORERS.names()} (one of your own: name the module that "
                "registers it in DELEGATE_PLUGINS)"
            )
    return names


def read_split(cfg: DataConfig) -> Split:
    """Every usable problem of the configured split, checked row by row; nothing is printed (see `load_split`).

    A question is `data.question_field`, or `data.question_template` filled with the row's fields. A gold is the
    text after `data.gold_marker` in the gold field (`data.gold_field`, else `data.answer_field`), as the dataset's
    scorer (`data.scorer`) reads it; rows whose gold that scorer cannot use are left out and counted. Ids are row
    indexes in the split (0-based, blank lines not counted), so a problem keeps its id whatever is skipped or drawn.
    Raises ConfigError, one line naming the setting, the line and the fix: an unknown scorer, a missing file, a
    file that is not JSON lines, an empty one, a broken line, a row that is not an object, a row without a question
    or gold field, a gold marker no row has, or no usable row at all.
    """
    scorers = scorers_of(cfg)
    scorer = get_scorer(cfg.scorer)
    setting = _source_setting(cfg)
    rows = _read_rows(cfg, setting)
    _check_question_fields(cfg, rows, setting)
    gold_name, gold_field = _gold_setting(cfg)
    _check_field(rows, gold_field, setting, f"set {gold_name} to the field that holds the answer")
    answers = [str(row.fields[gold_field]) for row in rows]
    if cfg.gold_marker is not None and not any(cfg.gold_marker in answer for answer in answers):
        raise ConfigError(
            f"data.gold_marker={cfg.gold_marker!r}: no answer in {setting} has it "
            f"({rows[0].where}: {answers[0][-60:]!r}); set data.gold_marker=null to use the whole answer field"
        )
    dataset = dataset_id(cfg)
    problems, skipped = [], []
    for index, (row, answer) in enumerate(zip(rows, answers)):
        # A row without the marker, in a split whose other rows have it, has no gold to read: it is skipped too.
        has_gold = cfg.gold_marker is None or cfg.gold_marker in answer
        gold = scorer.read_gold(gold_text(answer, cfg.gold_marker)) if has_gold else None
        if gold is not None:
            problems.append(
                Problem(id=index, question=_question(cfg, row), gold=gold, dataset=dataset, scorers=scorers)
            )
        else:
            skipped.append(row.where)
    if not problems:
        raise ConfigError(
            f"{setting}: every row's gold answer is {scorer.unusable_gold} for data.scorer={scorer.name} "
            f"({rows[0].where}: {answers[0][-60:]!r}); check {gold_name}={gold_field} and data.gold_marker"
        )
    return Split(problems, len(skipped), skipped[0] if skipped else None, scorer.unusable_gold)


def draw_sample(split: Split, samples: int | None, seed: int, cfg: DataConfig) -> Split:
    """`samples` of the split's usable problems drawn with `seed` (the same ones every time), in id order; all of
    them for None. Raises ConfigError, naming the split's source in `cfg`, when `samples` is not in 1..the number of
    usable problems."""
    if samples is None:
        return split
    ids = [problem.id for problem in split.problems]
    if not 0 < samples <= len(ids):
        usable = (
            f"{len(ids)} usable problems ({split.n_skipped} skipped)" if split.n_skipped else f"{len(ids)} problems"
        )
        raise ConfigError(
            f"samples={samples}: {_source_setting(cfg)} has {usable}; use 1..{len(ids)} or samples=null for all"
        )
    drawn = set(random.Random(seed).sample(ids, samples))
    return Split(
        [p for p in split.problems if p.id in drawn], split.n_skipped, split.first_skipped, split.skipped_because
    )


def skipped_warning(split: Split, cfg: DataConfig) -> str | None:
    """The one line that says how many rows `read_split` left out and where the first is; None when none was."""
    if not split.n_skipped:
        return None
    rows = len(split.problems) + split.n_skipped
    return (
        f"{_source_setting(cfg)}: {split.n_skipped} of {rows} rows skipped, gold answer {split.skipped_because} "
        f"(the first: {split.first_skipped}); counted as n_skipped, not scored"
    )


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
    source = cfg.path or cfg.file or cfg.builtin
    return f"{cfg.name}/{Path(source).stem if source else cfg.split}"
