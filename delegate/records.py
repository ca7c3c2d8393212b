"""The per-problem result contract: one typed `SampleRecord` per problem, one JSON line on disk, one loader to read it.

The runner writes records; metrics, resume, the sweep summary, the report and reproduce read them only through
`parse_record` / `read_records`, so a field is named once, here.

Record version 2 grew `degraded`, `failures` and `scores` without a new version: all have defaults, so a line written
before them reads as a problem no model failure touched (not degraded, no failures), scored by the numeric scorer
alone (`all_scores`).
"""

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from delegate.errors import ConfigError
from delegate.run_folder import SAMPLES_FILE
from delegate.scoring.base import Score

# Bumped whenever a field is renamed, removed or changes meaning; a reader refuses any other version. A field added
# with a default keeps the version (older lines read with the default).
RECORD_VERSION = 2
# The roles every record of version 2 accounts for; records written since hold the roles of their run's config.
LEGACY_ROLES = ("llm", "slm")
# The scorer that judged every record written before records kept `scores`.
LEGACY_SCORER = "numeric"


class IncompatibleRecords(ConfigError):
    """A samples file this version of delegate cannot read (another record version, or not a records file)."""


@dataclass(frozen=True)
class ModelPrices:
    """What one model's tokens cost, in USD per million tokens."""

    input_usd_per_1m: float = 0.0
    output_usd_per_1m: float = 0.0
    # Prompt tokens the provider served from its own prompt cache; None = billed as other input.
    cached_input_usd_per_1m: float | None = None

    @classmethod
    def of(cls, model_cfg: Any) -> "ModelPrices":
        """The prices a model config names (`price_input_usd_per_1m`, `price_cached_input_usd_per_1m`, `price_output_usd_per_1m`)."""
        return cls(
            input_usd_per_1m=model_cfg.price_input_usd_per_1m,
            output_usd_per_1m=model_cfg.price_output_usd_per_1m,
            cached_input_usd_per_1m=model_cfg.price_cached_input_usd_per_1m,
        )

    def cost_usd(self, prompt_tokens: int, provider_cached_prompt_tokens: int, completion_tokens: int) -> float:
        """USD for these tokens; `provider_cached_prompt_tokens` are part of `prompt_tokens`, at the cached rate."""
        cached_rate = self.input_usd_per_1m if self.cached_input_usd_per_1m is None else self.cached_input_usd_per_1m
        return (
            (prompt_tokens - provider_cached_prompt_tokens) * self.input_usd_per_1m
            + provider_cached_prompt_tokens * cached_rate
            + completion_tokens * self.output_usd_per_1m
        ) / 1e6


class CallUsage(Protocol):
    """What one model call reports about itself, as `delegate.models.ChatResponse` carries it (records sit below the
    model layer, so they name the fields, not the class). Tokens are counts, None when the server gave none."""

    latency_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    provider_cached_prompt_tokens: int | None
    cache_hit: bool

    @property
    def usage_missing(self) -> bool: ...


@dataclass
class RoleUsage:
    """One role's calls within one problem, summed as the model reported them. Tokens are counts; latency in seconds.

    A call whose server reported no usage counts in `calls`, `latency_s` and `usage_missing_calls`, never in the
    token counts: those are sums over the calls that reported them.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    # Calls served from our response cache, and the tokens they had cost when made (included above too).
    cache_hits: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    # Calls whose server reported no token counts (their tokens are unknown, and in none of the counts here).
    usage_missing_calls: int = 0
    # Of completion_tokens, those the model spent reasoning (as reported; 0 when not reported).
    reasoning_tokens: int = 0
    # Of prompt_tokens, those the provider served from its own prompt cache (OpenAI's cached_tokens), billed at the
    # cached-input price; and the part of them within our response cache's hits (for cache_saved_usd).
    provider_cached_prompt_tokens: int = 0
    cache_hit_provider_cached_prompt_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, response: CallUsage) -> None:
        """Count one call: its latency always, its tokens only when the server reported them."""
        self.calls += 1
        self.latency_s += response.latency_s
        if response.usage_missing:
            self.usage_missing_calls += 1
            return
        provider_cached = response.provider_cached_prompt_tokens or 0
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.reasoning_tokens += response.reasoning_tokens or 0
        self.provider_cached_prompt_tokens += provider_cached
        if response.cache_hit:
            self.cache_hits += 1
            self.cached_prompt_tokens += response.prompt_tokens
            self.cached_completion_tokens += response.completion_tokens
            self.cache_hit_provider_cached_prompt_tokens += provider_cached

    def cost_usd(self, prices: ModelPrices) -> float:
        """What the calls that reported usage cost when they were made, cache hits included (a lower bound when
        `usage_missing_calls` > 0)."""
        return prices.cost_usd(self.prompt_tokens, self.provider_cached_prompt_tokens, self.completion_tokens)

    def cache_saved_usd(self, prices: ModelPrices) -> float:
        """The part of `cost_usd` this run did not pay, because our response cache answered."""
        return prices.cost_usd(
            self.cached_prompt_tokens, self.cache_hit_provider_cached_prompt_tokens, self.cached_completion_tokens
        )


@dataclass
class Delegation:
    """One tool call the LLM made: what it asked, what the SLM answered (if it was asked), what went back."""

    # The call's id in the conversation, unique there: the tool message answering it carries this id.
    tool_call_id: str
    name: str
    # The arguments as the LLM wrote them (JSON text; a server's JSON object arrives serialized).
    arguments: str
    # The tool message sent back to the LLM.
    result: str
    # The event that kept the SLM from answering (`invalid_arguments`, `slm_error`, `over_limit`, ...); None if it answered.
    error: str | None = None
    question: str | None = None
    slm_output: str | None = None
    # As the SLM's server reported them; None also when it reported none.
    slm_prompt_tokens: int | None = None
    slm_completion_tokens: int | None = None
    slm_latency_s: float | None = None
    slm_cache_hit: bool | None = None
    # The id the server sent for the call (None: none, or read from the reply's text); `tool_call_id` replaces it
    # when it was missing or already used in the conversation.
    original_tool_call_id: str | None = None

    @property
    def answered(self) -> bool:
        """The SLM answered this call (its text went back to the LLM, in full or as its extracted answer)."""
        return self.slm_output is not None


@dataclass
class SampleRecord:
    """One problem's result: what was asked and expected, what came back, how it was scored, and what it cost."""

    # The problem's index in its split, and the split it comes from (`delegate.data.dataset_id`): a problem's
    # identity across runs is (dataset, id).
    id: int
    dataset: str
    question: str
    gold: str
    strategy: str
    # The final text that was scored.
    response: str
    # The primary scorer's verdict (the dataset's `data.scorer`): the answer it extracted, the rule that found it
    # (boxed, answer_is, hashes, last_number, none), and whether it is right and the attempt was not ended by a
    # failed model call (`error`); a degraded problem can be right.
    extracted: str | None
    extraction_rule: str
    correct: bool
    # End-to-end wall time of this problem in this run, seconds.
    latency_s: float
    # Per model role of the run (each model its config names; a role the strategy does not use stays at zero).
    usage: dict[str, RoleUsage]
    # Tool calls the LLM made (answered, refused and malformed alike).
    tool_calls: int
    # Counted events that did not stop the attempt (bad tool arguments, SLM errors, cut-offs).
    events: dict[str, int]
    delegations: list[Delegation]
    cost_usd: float
    cache_saved_usd: float
    # "<ExceptionType>: <message>" when a model call failed and ended the attempt; None otherwise.
    error: str | None
    # The whole conversation, in OpenAI's message format.
    transcript: list[dict[str, Any]]
    record_version: int = RECORD_VERSION
    # A model call failed (after its retries) and the strategy went on without it, so the result was shaped by the
    # failure (e.g. the LLM answered alone after the SLM failed). Never set together with `error`.
    degraded: bool = False
    # One entry per model call that failed after its retries and whose failure the strategy absorbed, in the order
    # they failed: "<role>: <kind> (HTTP <status>): <detail>", e.g. "slm: RateLimitError (HTTP 429): slow down".
    # Kept when the attempt then ended in `error` as well.
    failures: list[str] = field(default_factory=list)
    # Every scorer's verdict by name, the primary scorer's first (its entry repeats `extracted`, `extraction_rule`
    # and `correct`), with `correct` false when the attempt errored, as above. Empty in records written before it:
    # read them through `all_scores`.
    scores: dict[str, Score] = field(default_factory=dict)

    @property
    def all_scores(self) -> dict[str, Score]:
        """`scores`, or for a record written before it, the numeric scorer's verdict made of the primary fields."""
        if self.scores:
            return self.scores
        return {LEGACY_SCORER: Score(extracted=self.extracted, rule=self.extraction_rule, correct=self.correct)}

    @property
    def clean(self) -> bool:
        """No model failure shaped this problem: it neither errored nor was degraded."""
        return self.error is None and not self.degraded

    @property
    def usage_complete(self) -> bool:
        """The problem ran to its end (no `error`) and every model call reported its token counts, so its token
        totals and cost are complete: a problem cut off by a failed call spent only part of what it would have."""
        return self.error is None and all(usage.usage_missing_calls == 0 for usage in self.usage.values())

    @property
    def delegated(self) -> bool:
        """At least one sub-question was answered by the SLM."""
        return any(d.answered for d in self.delegations)

    def to_json(self) -> str:
        """One line of human-readable JSON (non-ASCII kept), each role's `tokens` total added for the reader's sake."""
        data = asdict(self)
        for role, usage in self.usage.items():
            data["usage"][role]["tokens"] = usage.tokens
        return json.dumps(data, ensure_ascii=False)


_ADAPTER = TypeAdapter(SampleRecord)


def parse_record(data: Any, where: str) -> SampleRecord:
    """A record from its decoded JSON; raises IncompatibleRecords naming `where` (file and line) and the fix."""
    version = data.get("record_version") if isinstance(data, dict) else None
    if version != RECORD_VERSION:
        raise IncompatibleRecords(
            f"{where}: not a sample record of this delegate version (record_version {version}, this version reads "
            f"{RECORD_VERSION}); re-run the job with this version, or read it with the version that wrote it"
        )
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise IncompatibleRecords(
            f"{where}: field {location!r}: {first['msg']}; the file was changed by hand or written by another version"
        ) from None


def method_label(strategy: str, roles: tuple[str, ...], model_names: dict[str, str]) -> str:
    """How runs and report rows name a method: '<strategy> (<model> -> <model>)' over the roles it uses, in order."""
    return f"{strategy} ({' -> '.join(model_names.get(role, '?') for role in roles)})"


def judged(record: SampleRecord, scores: dict[str, Score]) -> SampleRecord:
    """`record` as `scores` judge it (name → verdict, the primary scorer first): the extracted answer, the rule and
    `correct` from the primary, every verdict kept by name; none is correct when the attempt errored."""
    kept = {
        name: replace(verdict, correct=verdict.correct and record.error is None) for name, verdict in scores.items()
    }
    primary = next(iter(kept.values()))
    return replace(
        record, extracted=primary.extracted, extraction_rule=primary.rule, correct=primary.correct, scores=kept
    )


def record_roles(records: Iterable[SampleRecord]) -> tuple[str, ...]:
    """The model roles these records account for, in the order they first appear (e.g. ("llm", "slm"))."""
    roles: dict[str, None] = {}
    for record in records:
        roles.update(dict.fromkeys(record.usage))
    return tuple(roles)


def record_lines(text: str) -> list[str]:
    """The non-blank lines of a samples file. Only "\\n" ends a record: str.splitlines() would also split at U+2028."""
    return [line for line in text.split("\n") if line.strip()]


def read_records(path: Path) -> list[SampleRecord]:
    """Every record of a samples.jsonl, in file order; IncompatibleRecords for a line that is not one (named by number)."""
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise IncompatibleRecords(
                f"{path}:{number}: not JSON; a {SAMPLES_FILE} holds one JSON record per line"
            ) from None
        records.append(parse_record(data, f"{path}:{number}"))
    return records


class SampleWriter:
    """Appends records to samples.jsonl, one line each, flushed per line so a killed run keeps every problem it finished."""

    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: SampleRecord) -> None:
        self._file.write(record.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
