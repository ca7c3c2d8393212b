"""What the console scripts share: quiet library logging, `--help` built from the configs, config errors as one line."""

import copy
import difflib
import itertools
import logging
import os
import re
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from delegate.compose import PLUGINS_ENV, register_schemas
from delegate.config import CONFIG_DIR
from delegate.config.roles import role_groups
from delegate.config.search_path import is_group, option_files, primary_config
from delegate.redaction import install_log_redaction, redact

# INFO lines that come once per model request (the HTTP clients; httpx2/httpcore2 are the names newer openai SDKs
# log under) or once per store (MLflow creating and migrating its SQLite tables): noise on the terminal and in
# <run dir>/evaluate.log. Their warnings and errors still show.
NOISY_LOGGERS = ("httpx", "httpcore", "httpx2", "httpcore2", "openai", "mlflow.store.db.utils")
# Libraries that print their log lines through a handler of their own and also pass them up to the root logger,
# where Hydra's job logging prints them a second time: shown once, by their own handler, on stderr.
SELF_PRINTING_LOGGERS = ("huggingface_hub", "datasets")
HELP_FLAGS = ("-h", "--help")
# An unknown key's siblings, or a group's options, are listed in the error line up to this many.
MAX_LISTED = 12
WIDTH = 100


def quiet_libraries() -> None:
    """Install the log redaction (delegate.redaction), set the loggers in NOISY_LOGGERS to WARNING (`openai`'s is left
    alone when $OPENAI_LOG asks for its lines), and stop SELF_PRINTING_LOGGERS passing their lines on (what their own
    `disable_propagation()` does, without importing them).

    Call it before Hydra starts and in each job (launchers run jobs in other processes): Hydra's job logging sets the
    root logger to INFO, which these named loggers no longer inherit.
    """
    # Every log line, ours or a library's (httpx logs each URL), passes the one redaction step.
    install_log_redaction()
    # MLflow draws a progress bar for every artifact it downloads (a run's records, its .hydra/): noise in a command's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in NOISY_LOGGERS:
        if name == "openai" and os.environ.get("OPENAI_LOG"):
            continue
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SELF_PRINTING_LOGGERS:
        logging.getLogger(name).propagate = False


def wants_help(arguments: list[str]) -> bool:
    """Whether the command line asks for --help / -h (Hydra's own --hydra-help is left to Hydra)."""
    return any(argument in HELP_FLAGS for argument in arguments)


# ---- --help, built from the config folders and the schemas in Hydra's ConfigStore ---------------------------------


def _leading_comment(path: Path) -> str:
    """The first sentence of a config file's leading comment (`# @package` lines skipped)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if not text.startswith("@package"):
            lines.append(text)
    comment = " ".join(lines)
    sentence = re.match(r"(.+?[.!?])(?:\s|$)", comment)
    return sentence[1] if sentence else comment


def _schema_of(option_cfg: Any) -> str | None:
    """The `*_schema` node an option file's defaults list extends, e.g. 'openai_schema'."""
    for entry in option_cfg.get("defaults") or ():
        if isinstance(entry, str) and entry.endswith("_schema"):
            return entry
    return None


def _model_about(group: str, option_cfg: Any) -> str:
    """A model option in a few words: its model id, and where it runs."""
    model = option_cfg.get("model", "?")
    if _schema_of(option_cfg) == "transformers_schema":
        gguf = option_cfg.get("gguf_file")
        return f"{model}{f' ({gguf})' if gguf else ''}, in-process (transformers)"
    base_url = option_cfg.get("base_url")
    if base_url:
        return f"any OpenAI-compatible server: {group}.base_url={base_url} {group}.model={model} unless you set them"
    return f"{model}, OpenAI API"


def group_options(group: str) -> dict[str, str]:
    """{option: what it is} for `<group>/*.yaml` of delegate/conf/ and the user's config folders (never the
    `*_schema` nodes of the ConfigStore)."""
    options = {}
    for path in option_files(group).values():
        option_cfg = OmegaConf.load(path)
        is_model = group in role_groups() and "model" in option_cfg
        options[path.stem] = _model_about(group, option_cfg) if is_model else _leading_comment(path)
    return options


def default_options() -> dict[str, str | None]:
    """{group: its default option} from the primary config.yaml's defaults list, in its order, then each model role
    a registered strategy adds (`verifier`), with no default (None: `+verifier=<model>` gives it one)."""
    defaults = {}
    for entry in OmegaConf.load(primary_config()).defaults:
        if not isinstance(entry, str):
            for group, option in entry.items_ex(resolve=False):
                defaults[group] = option
    register_schemas()
    return defaults | {role: None for role in role_groups() if role not in defaults}


def _stored_schemas(group: str) -> dict[str, Any]:
    """{name: node} of the `<name>_schema` nodes stored in Hydra's ConfigStore for `group` (none for a group
    without any, e.g. experiment)."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.object_type import ObjectType

    register_schemas()
    store = ConfigStore.instance()
    if store.get_type(group) != ObjectType.GROUP:
        return {}
    return {
        entry.removesuffix("_schema.yaml"): store.load(f"{group}/{entry}").node
        for entry in sorted(store.list(group))
        if entry.endswith("_schema.yaml")
    }


def schema_keys(group: str) -> dict[str, list[str]]:
    """{schema name: its top-level keys} for each `<name>_schema` stored in the group, e.g. {'openai': [...]}."""
    return {name: [str(k) for k in node.keys()] for name, node in _stored_schemas(group).items()}


def top_level_keys() -> list[tuple[str, str, str]]:
    """(key, default, comment) for the plain keys of the primary config.yaml, nested ones dotted (`cache.enabled`).

    Read from the file's text so that its comments, the one place these keys are described, are what --help says.
    """
    entries = []
    section = None
    for line in primary_config().read_text(encoding="utf-8").splitlines():
        found = re.match(r"^( *)([A-Za-z_][\w-]*):([^#]*?)\s*(?:#\s*(.*))?$", line)
        if not found:
            continue
        indent, key, value, comment = found[1], found[2], found[3].strip(), found[4] or ""
        if not indent:
            if key == "hydra":
                break
            section = None if value else key
            if value:
                entries.append((key, value, comment))
        elif section not in (None, "defaults") and value:
            entries.append((f"{section}.{key}", value, comment))
    return entries


def _wrapped(first: str, text: str, indent: int) -> list[str]:
    """`first` padded to `indent`, then `text` wrapped to WIDTH with that hanging indent (below `first` if it is
    too long to share a line)."""
    pad = " " * indent
    if len(first) >= indent:
        return [first, *textwrap.wrap(text, WIDTH, initial_indent=pad, subsequent_indent=pad)]
    return textwrap.wrap(text, WIDTH, initial_indent=f"{first:<{indent}}", subsequent_indent=pad) or [first]


def help_text(
    program: str,
    summary: str,
    usage: list[str],
    examples: list[tuple[str, str]],
    choices: dict[str, str | None] | None = None,
    keys: list[str] | None = None,
    sweeps: bool = True,
) -> str:
    """The --help page of a console script that takes the config tree.

    What it does (`summary`), its `usage` lines, the config groups of `choices` ({group: its default option}; all of
    config.yaml's defaults list when None) with their real options (`<group>/*.yaml` of every config folder, `*`
    marking the default) and the keys of their schemas, the top-level keys named in `keys` (all when None) with their defaults
    and meaning (config.yaml), and the (command, what it does) `examples`. `sweeps`: mention -m and Hydra's flags.
    """
    lines = [*textwrap.wrap(f"{program}: {summary}", WIDTH), ""]
    lines += [("usage: " if i == 0 else "       ") + u for i, u in enumerate(usage)]
    lines += ["", "Config groups (group=option; * marks the default):"]
    choices = default_options() if choices is None else choices
    for group, default in choices.items():
        if not is_group(group):
            continue
        lines.append(f"  {group}" + ("" if default else " (none by default)"))
        for option, about in group_options(group).items():
            lines += _wrapped(f"    {'*' if option == default else ' '} {option}", about, 26)
        schemas = schema_keys(group)
        for schema, names in schemas.items():
            label = f"{group}.* keys" + (f" ({schema})" if len(schemas) > 1 else "")
            lines += _wrapped(f"      {label}:", ", ".join(names), 26)
    lines += ["", "Keys (key=value; the default shown):"]
    for key, value, comment in top_level_keys():
        if keys is None or key in keys:
            lines += _wrapped(f"  {key}={value}", comment, 26)
    lines += ["", "Examples:"]
    for command, what in examples:
        lines += [f"  {command}", *textwrap.wrap(what, WIDTH, initial_indent="      ", subsequent_indent="      ")]
    notes = [
        "Settings are `group=option` and `key=value`; dotted keys reach inside a group (llm.max_tokens=256)"
        + ("; with -m, comma lists are swept (strategy=llm,router,slm)." if sweeps else "."),
        "A misspelt key or option stops before anything runs: one `error:` line with a suggestion, exit status 2.",
    ]
    if sweeps:
        notes.append(
            "Hydra's flags work too: --cfg job (print the composed config), -p KEY (one part of it), --hydra-help, "
            "--config-path <run folder>/.hydra --config-name config (run a saved config again)."
        )
    lines.append("")
    for note in notes:
        lines += textwrap.wrap(note, WIDTH)
    return "\n".join(lines) + "\n"


# ---- Hydra's composition errors as one line ----------------------------------------------------------------------


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _listed(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= MAX_LISTED else f"{', '.join(names[:MAX_LISTED])}, ... (see --help)"


def _option_schemas(group: str) -> dict[str, Any]:
    """{option of <group>: its schema as plain containers} for the options whose files extend a stored schema."""
    stored = _stored_schemas(group)
    found = {}
    for path in option_files(group).values():
        schema = (_schema_of(OmegaConf.load(path)) or "").removesuffix("_schema")
        if schema in stored:
            found[path.stem] = OmegaConf.to_container(stored[schema], throw_on_missing=False)
    return found


def _has_path(tree: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def unknown_key_line(full_key: str, siblings: list[str]) -> str:
    """'unknown key ...' with the closest sibling key, else the options of the key's group that have it, else the
    keys that exist there."""
    parent, _, key = full_key.rpartition(".")
    prefix = f"{parent}." if parent else ""
    siblings = [s for s in siblings if s != "hydra" or parent]
    close = difflib.get_close_matches(key, siblings, n=1)
    if close:
        return f"unknown key '{full_key}' — did you mean '{prefix}{close[0]}'?"
    group, _, rest = full_key.partition(".")
    if rest and is_group(group):
        having = [option for option, schema in _option_schemas(group).items() if _has_path(schema, rest)]
        if having:
            return (
                f"unknown key '{full_key}' for this {group}; it belongs to {' / '.join(f'{group}={o}' for o in having)}"
            )
    where = f"{parent} has" if parent else "the keys are"
    return f"unknown key '{full_key}'; {where} {_listed(siblings)}"


def missing_option_line(error: MissingConfigException) -> str:
    """'group=option is not an option' with the closest option and the valid ones (never the `*_schema` nodes)."""
    group, _, option = (error.missing_cfg_file or "").rpartition("/")
    options = [o for o in error.options or () if not o.endswith("_schema")]
    if option.endswith("_schema"):
        # The option's file exists, but what it extends is registered by a module that was not imported.
        name = option.removesuffix("_schema")
        return (
            f"{group}={name}: its config extends {option}, which no registered {group} provides; if the {group} is "
            f"your own, name the module that registers it in {PLUGINS_ENV} (and put it on PYTHONPATH)"
        )
    if not group or not options:
        return _first_line(error)
    line = f"{group}={option} is not an option"
    close = difflib.get_close_matches(option, options, n=1)
    if close:
        return f"{line}; did you mean {group}={close[0]}? (options: {_listed(options)})"
    return f"{line}; use one of {_listed(options)}"


# OmegaConf's validation messages, said the way a command line reads.
_TYPE_REASONS = (
    (re.compile(r"could not be converted to Integer"), "not an integer"),
    (re.compile(r"could not be converted to Float"), "not a number"),
    (re.compile(r"is not a valid bool"), "not true or false"),
    (re.compile(r"is not Optional"), "cannot be null"),
    (re.compile(r"expected one of \[(.*)\]"), "use one of {0}"),
)


def invalid_value_line(error: ConfigCompositionException, cause: ValidationError) -> str:
    """'key=value: not an integer' (and the like) for a value that does not fit its schema."""
    merged = re.match(r"Error merging override (\S+)", str(error))
    setting = merged[1] if merged else (cause.full_key or _first_line(error))
    message = _first_line(cause)
    for pattern, reason in _TYPE_REASONS:
        found = pattern.search(message)
        if found:
            return f"{setting}: {reason.format(*found.groups())}"
    return f"{setting}: {message}"


def config_error_line(error: BaseException) -> str | None:
    """One line naming the setting and the fix for an error Hydra raised composing the config; None for any other.

    Handles an unknown key (`smaples=2` → did you mean 'samples'?), an unknown group option (`strategy=oracle` →
    the options), a value of the wrong type (`samples=abc` → not an integer) and an override Hydra can't parse.
    Hydra's own hint for an unknown key, `+key=value`, is never repeated: followed, it runs a job with the typo
    as an extra key nothing reads.
    """
    if isinstance(error, MissingConfigException):
        return missing_option_line(error)
    if isinstance(error, OverrideParseException):
        # The override may hold a credential (a URL's userinfo or `?api-key=`): the line goes through redaction.
        return (
            f"could not read the override '{redact(error.override or '')}': {redact(_first_line(error.message))} "
            "(quote values with spaces, commas or brackets: 'key=\"a, b\"')"
        )
    if isinstance(error, ConfigCompositionException):
        cause = error.__cause__
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
            siblings = [str(k) for k in cause.parent_node.keys()] if cause.parent_node is not None else []
            return unknown_key_line(str(cause.full_key), siblings)
        if isinstance(cause, ValidationError):
            return invalid_value_line(error, cause)
        return _first_line(error)
    return None


def _is_group(key: str) -> bool:
    """Whether an override's key picks a config group's option (`strategy`, `hydra/launcher`, `llm@x`)."""
    group = key.lstrip("+~").partition("@")[0]
    return "/" in group or is_group(group)


def _sweeper_params(overrides: list[str]) -> dict[str, str]:
    """The sweep's params a config sets itself (`hydra.sweeper.params`, e.g. experiment=compare's strategies), read
    from the config composed with the first value of each swept override."""
    from hydra import compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    return {str(key): str(value) for key, value in (OmegaConf.select(cfg, "hydra.sweeper.params") or {}).items()}


def job_configs(overrides: list[str], sweep: bool) -> list[DictConfig]:
    """The config of every job `delegate-eval` would run for these overrides, composed ahead of Hydra, which makes
    the run's (or sweep's) folder before it composes them; raises what composing raises (see config_error_line), so
    a mistake leaves nothing behind.

    One config for a single run. For a sweep (-m), one per combination, as Hydra's basic sweeper makes them: the
    params the config sets (`hydra.sweeper.params`) and the command line's swept keys, the command line winning.
    Overrides that pick a group option, add or delete a key are composed, once per combination of them; a plain
    key's values are assigned into that composed config, which checks their types without composing again. A sweep
    over an interval is left to Hydra.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from delegate.compose import compose_config

    if not sweep:
        return [compose_config(overrides)]
    parser = OverridesParser.create()
    parsed = [o for o in parser.parse_overrides(overrides) if not o.is_sweep_override() or o.is_discrete_sweep()]
    first_values = [
        f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override() else o.input_line
        for o in parsed
    ]
    params = [f"{key}={value}" for key, value in _sweeper_params(first_values).items()]
    # {key: [(override line, value), ...]}: the config's params first, then the command line's, which replace them.
    choices: dict[str, list[tuple[str, Any]]] = {}
    for override in [*parser.parse_overrides(params), *parsed]:
        key = override.get_key_element()
        if override.is_sweep_override():
            lines = [f"{key}={text}" for text in override.sweep_string_iterator()]
            # Each value as Hydra reads it on its own (a quoted string is its text, not a QuotedString).
            choices[key] = [(line, parser.parse_override(line).value()) for line in lines]
        else:
            choices[key] = [(override.input_line, override.value())]
    composed = [k for k in choices if _is_group(k) or k.startswith(("+", "~", "hydra."))]
    assigned = [k for k in choices if k not in composed]
    configs = []
    for composed_choice in itertools.product(*(choices[k] for k in composed)):
        cfg = compose_config([line for line, _ in composed_choice] + [choices[k][0][0] for k in assigned])
        for assigned_choice in itertools.product(*(choices[k] for k in assigned)):
            job = copy.deepcopy(cfg)
            for key, (line, value) in zip(assigned, assigned_choice):
                try:
                    OmegaConf.update(job, key, value, merge=True)
                except ValidationError as error:
                    raise ConfigCompositionException(f"Error merging override {line}") from error
            configs.append(job)
    return configs


@contextmanager
def config_errors_as_one_line() -> Iterator[None]:
    """Run a `@hydra.main` app so that a config it can't compose ends as `error: <one line>` on stderr, exit status 2.

    Hydra prints such errors itself, over several lines, and exits 1, unless $HYDRA_FULL_ERROR=1 makes it raise:
    that is set here for the duration. Errors from the job itself, and every error when the user set
    HYDRA_FULL_ERROR=1 themselves, pass through unchanged.
    """
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    except (ConfigCompositionException, OverrideParseException) as error:
        line = config_error_line(error)
        if previous == "1" or line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


__all__ = [
    "config_error_line",
    "config_errors_as_one_line",
    "default_options",
    "help_text",
    "job_configs",
    "quiet_libraries",
    "wants_help",
]
