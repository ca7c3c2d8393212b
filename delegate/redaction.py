"""Remove secrets (API keys, URL credentials) from any text before it is logged, recorded, traced or sent on.

One process-wide redactor. The secrets it knows:

- every value registered with `register_secret`: each API key delegate reads (`models.secrets.read_api_key`), the
  credentials of each URL in a model's or the tracking config (`register_config_secrets`, `register_url_credentials`),
  and values found under secret-looking keys in a config;
- the value of every environment variable whose name contains KEY, TOKEN, SECRET, PASSWORD, PASSWD or CREDENTIAL
  (any case), read afresh at each call.

Values shorter than MIN_SECRET_CHARS are never treated as secrets: removing every "1234" from a model's answer would
change scores, and no provider issues keys that short.

`redact(text)` replaces each known secret, in plain or URL-encoded form and inside base64 (as an echoed
`Authorization: Basic base64(user:key)` header carries it), with MARKER, and the userinfo of any URL
(`scheme://user:pw@host`) with `***`. It is idempotent: text already redacted comes back unchanged.
"""

import base64
import logging
import os
import re
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from delegate.run_folder import SAVED_CONFIG_FILE, SAVED_HYDRA_FILE, SAVED_MULTIRUN_FILE, SAVED_OVERRIDES_FILE

MARKER = "[REDACTED]"
MIN_SECRET_CHARS = 8
# Hydra's files that hold the config and the command line: a job's `<output dir>/.hydra/` has the first three, a
# sweep's folder the last.
HYDRA_FILES = (SAVED_CONFIG_FILE, SAVED_OVERRIDES_FILE, SAVED_HYDRA_FILE, SAVED_MULTIRUN_FILE)

_SECRET_ENV_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
# A config key is secret when its last word is one of these...
_SECRET_WORDS = {
    "key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "credential",
    "credentials",
    "auth",
    "authorization",
}
# ...unless it measures something: max_token, price_per_token (counts and prices of tokens, not tokens).
_MEASURE_WORDS = {"max", "min", "per", "num", "count", "price", "cost"}
# The words of a key: snake_case, kebab-case, camelCase and UPPER_CASE alike.
_KEY_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# A URL's authority up to its userinfo's `@`; the userinfo stops at what can't be in one (or at a quote or bracket,
# so that two quoted strings side by side are not read as one URL).
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#@\"'<>`\\\[\]{}]+)@")
# A query parameter of a URL (`?api-key=...`, `&sig=...`, as Azure and signed URLs carry credentials); its value ends
# where a URL's would, or at a quote or bracket.
_URL_QUERY_PARAM = re.compile(r"(?P<lead>[?&;](?P<name>[A-Za-z0-9_.\-]+)=)(?P<value>[^&#;\s\"'<>`\\\[\]{}]+)")
# Query parameter names that carry a credential though no secret word ends them (a signed URL's signature).
_SECRET_QUERY_NAMES = {"sig", "signature", "x-amz-signature", "x-goog-signature", "code"}
# `key=value` in a log line (Hydra logs each job's overrides); the value ends at whitespace or a comma.
_ASSIGNMENT = re.compile(r"(?<![\w.])(?P<key>[+~]{0,2}[A-Za-z_][\w.]*)=(?P<value>[^\s,]+)")
_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]")
_URLSAFE = str.maketrans("+/", "-_")

_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Have `redact` remove `value` from now on (None, or shorter than MIN_SECRET_CHARS: ignored)."""
    if value and len(value) >= MIN_SECRET_CHARS:
        with _registered_lock:
            _registered.add(value)


def _secret_query_param(name: str) -> bool:
    return is_secret_key(name) or name.lower() in _SECRET_QUERY_NAMES


def register_url_credentials(text: str | None) -> None:
    """Register the credentials of every URL in `text`: the password (`scheme://user:password@host`), or the user
    name when there is no password (`https://KEY@host`), and the value of each secret-named query parameter
    (`?api-key=KEY`, `&sig=...`), as written and percent-decoded."""
    for match in _URL_USERINFO.finditer(text or ""):
        user, _, password = match["userinfo"].partition(":")
        register_secret(password or user)
        register_secret(unquote(password or user))
    if "://" in (text or ""):
        for match in _URL_QUERY_PARAM.finditer(text):
            if _secret_query_param(match["name"]):
                register_secret(match["value"])
                register_secret(unquote(match["value"]))


def register_config_secrets(tree: Any) -> None:
    """Register every string under a secret-looking key (`is_secret_key`) and the credentials of every URL in a
    config tree (dicts, lists and scalars, as `OmegaConf.to_container` gives it)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if is_secret_key(key) and isinstance(value, str):
                register_secret(value)
            register_config_secrets(value)
    elif isinstance(tree, list):
        for item in tree:
            register_config_secrets(item)
    elif isinstance(tree, str):
        register_url_credentials(tree)


def known_secrets() -> frozenset[str]:
    """The registered secrets and the values of the secret-looking environment variables, as they are now."""
    from_env = {
        value for name, value in os.environ.items() if len(value) >= MIN_SECRET_CHARS and _SECRET_ENV_NAME.search(name)
    }
    with _registered_lock:
        return frozenset(_registered | from_env)


def redact(text: str) -> str:
    """`text` with URL userinfo and the values of secret-named query parameters replaced by `***`, and every known
    secret (plain, URL-encoded, base64) by MARKER."""
    if not text:
        return text
    text = _URL_USERINFO.sub(r"\g<scheme>***@", text)
    if "://" in text:
        text = _URL_QUERY_PARAM.sub(lambda m: f"{m['lead']}***" if _secret_query_param(m["name"]) else m[0], text)
    pattern = _secrets_pattern(known_secrets())
    return pattern.sub(MARKER, text) if pattern is not None else text


def is_secret_key(name: Any) -> bool:
    """Whether a config key (dotted or not) names a secret: its last segment's last word is key, api_key, token,
    secret, password, passwd, credentials, auth...; not a variable's name (`api_key_env`), nor a count or price of
    tokens (`max_tokens`, `max_tokens_param`, `prompt_tokens`, `price_per_token`)."""
    words = [word.lower() for word in _KEY_WORD.findall(str(name).rsplit(".", 1)[-1])]
    return bool(words) and words[-1] in _SECRET_WORDS and not _MEASURE_WORDS.intersection(words)


def redact_config(tree: Any) -> Any:
    """A copy of a config tree (dicts, lists, scalars) in which every value under a secret-looking key is MARKER
    (None stays None) and every string has gone through `redact`."""
    if isinstance(tree, dict):
        return {
            key: MARKER if is_secret_key(key) and value is not None else redact_config(value)
            for key, value in tree.items()
        }
    if isinstance(tree, list):
        return [redact_config(item) for item in tree]
    return redact(tree) if isinstance(tree, str) else tree


def redact_override(override: str) -> str:
    """A command-line override (`llm.base_url=...`, `+hydra.job.env_set.OPENAI_API_KEY=...`) with its value MARKER
    when its key looks secret, else through `redact`."""
    key, sep, value = override.partition("=")
    if sep and value and is_secret_key(key.lstrip("+~")):
        return f"{key}={MARKER}"
    return redact(override)


def redact_files(folder: Path) -> None:
    """Rewrite Hydra's files in `folder` (HYDRA_FILES: a job's `.hydra/`, or a sweep's folder) with their secrets
    removed: the config as `redact_config` leaves it; every override (overrides.yaml, `hydra.overrides.*`,
    `hydra.job.override_dirname`) as `redact_override` does. Secrets found in any of them are registered first, so
    that none stays in another. Missing files are skipped; a file with nothing to remove is left untouched; a file is
    replaced whole (written beside it, then renamed), so that a job reading it meanwhile never sees half of one."""
    from omegaconf import OmegaConf

    trees = {
        path: OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        for path in (folder / name for name in HYDRA_FILES)
        if path.is_file()
    }
    for tree in trees.values():
        register_config_secrets(tree)
        for override in _overrides(tree):
            key, _, value = override.partition("=")
            if is_secret_key(key.lstrip("+~")):
                register_secret(value)
    for path, tree in trees.items():
        redacted = _redact_hydra_tree(tree)
        if redacted != tree:
            written = path.with_name(f".{path.name}.{os.getpid()}.redacted")
            OmegaConf.save(OmegaConf.create(redacted), written)
            os.replace(written, path)


def _overrides(tree: Any) -> list[str]:
    """The overrides a Hydra file holds: overrides.yaml is a list of them; hydra.yaml has them under `hydra.overrides`."""
    if isinstance(tree, list):
        return [item for item in tree if isinstance(item, str)]
    lists = ((tree.get("hydra") or {}).get("overrides") or {}).values() if isinstance(tree, dict) else ()
    return [item for items in lists if isinstance(items, list) for item in items if isinstance(item, str)]


def _redact_hydra_tree(tree: Any) -> Any:
    if isinstance(tree, list):
        return [redact_override(item) if isinstance(item, str) else redact_config(item) for item in tree]
    redacted = redact_config(tree)
    hydra = redacted.get("hydra") if isinstance(redacted, dict) else None
    if isinstance(hydra, dict):
        overrides = hydra.get("overrides")
        if isinstance(overrides, dict):
            hydra["overrides"] = {name: _redact_hydra_tree(items) for name, items in overrides.items()}
        job = hydra.get("job")
        if isinstance(job, dict) and isinstance(job.get("override_dirname"), str):
            # Hydra joins the overrides with "," (its default item_sep).
            job["override_dirname"] = ",".join(redact_override(item) for item in job["override_dirname"].split(","))
    return redacted


class RedactingFilter(logging.Filter):
    """Redacts a log record in place (its message with its args, the formatted exception and stack) and lets it pass:
    `redact`, and the value of each `key=value` whose key looks secret (an override Hydra logs).

    On a handler it covers what that handler writes; `install_log_redaction` applies it to every record made."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # args that don't fit the message: shown as they are, still redacted
            message = f"{record.msg} {record.args!r}"
        redacted = _ASSIGNMENT.sub(_redact_assignment, redact(message))
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters print exc_text when it is set; without exc_info nothing can format the original again.
            record.exc_text, record.exc_info = redact(record.exc_text), None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_assignment(match: re.Match) -> str:
    return f"{match['key']}={MARKER}" if is_secret_key(match["key"]) else match[0]


_log_redaction_installed = False


def install_log_redaction() -> None:
    """Redact every log record from now on, whichever logger makes it and whichever handler writes it (Hydra's
    job-log file, MLflow's own handler, handlers added later): RedactingFilter runs in the log record factory, which
    Hydra's logging configuration leaves alone. Call it once per process before anything logs (a console script's
    `main`, and at the start of a job, which a sweep's launcher may run in another process); calling it again does
    nothing."""
    global _log_redaction_installed
    if _log_redaction_installed:
        return
    make_record = logging.getLogRecordFactory()
    redacting = RedactingFilter()

    def make_redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        redacting.filter(record)
        return record

    logging.setLogRecordFactory(make_redacted_record)
    _log_redaction_installed = True


class RedactingSink:
    """Streams text on to `sink` redacted: it holds back the end of what came until no secret or URL userinfo can
    still be forming there (up to the last whitespace, at least the longest secret's URL-encoded length back), and
    `flush` passes on the rest once the stream ends. Joined, what `sink` receives is `redact` of the whole text."""

    def __init__(self, sink: Callable[[str], None]):
        self._sink = sink
        self._pending = ""

    def __call__(self, text: str) -> None:
        self._pending += text
        cut = self._safe_cut()
        if cut:
            self._sink(redact(self._pending[:cut]))
            self._pending = self._pending[cut:]

    def flush(self) -> None:
        if self._pending:
            self._sink(redact(self._pending))
            self._pending = ""

    def _safe_cut(self) -> int:
        """How much of the pending text can be passed on: nothing that a later piece could turn into a secret."""
        secrets = known_secrets()
        # The longest text a secret's pattern can match: each byte percent-encoded.
        hold = 3 * max((len(s.encode()) for s in secrets), default=0)
        limit = len(self._pending) - hold
        # URL userinfo holds no whitespace: cutting after whitespace never splits one.
        cut = next((i + 1 for i in range(limit - 1, -1, -1) if self._pending[i].isspace()), 0)
        pattern = _secrets_pattern(secrets)
        if pattern is not None:
            for match in pattern.finditer(self._pending):
                if match.start() >= cut:
                    break
                if match.end() > cut:
                    return match.start()
        return cut


@lru_cache(maxsize=16)
def _secrets_pattern(secrets: frozenset[str]) -> re.Pattern | None:
    """One regex matching every form of every secret, longest first (None: no secrets)."""
    forms = {form for secret in secrets for form in _forms(secret)}
    return re.compile("|".join(sorted(forms, key=len, reverse=True))) if forms else None


def _forms(secret: str) -> list[str]:
    """Regexes for `secret`: as it is or URL-encoded (each character either way, %XX in either case), and the
    alignment-stable core of its base64 at each of the 3 byte offsets it can sit at inside a longer base64 string
    (e.g. after `user:` in a Basic header), in the standard and URL-safe alphabets."""
    plain = "".join(_char_form(char) for char in secret)
    data = secret.encode()
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        # Characters mixing filler bits (before) or the unknown next bytes (after) differ with the surroundings.
        core = encoded[(8 * offset + 5) // 6 : 8 * (offset + len(data)) // 6]
        cores += [re.escape(core), re.escape(core.translate(_URLSAFE))]
    return [plain, *cores]


def _char_form(char: str) -> str:
    if _UNRESERVED.fullmatch(char):
        return re.escape(char)
    encoded = "".join(f"%{byte:02X}" for byte in char.encode())
    alternatives = [re.escape(char), f"(?i:{encoded})"] + [r"\+"] * (char == " ")
    return f"(?:{'|'.join(alternatives)})"
