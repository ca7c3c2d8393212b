"""Records as the MLflow UI shows them: each problem's verdict on its trace, and the run's table, description and dataset.

Per trace (written by `trace_writer`): the gold answer as an expectation, the score as feedback (`correct`, with the
extracted answer and the rule that found it), and tags (strategy, run, problem id, verdict, degraded), so the Traces
tab shows and filters right and wrong answers, and the answers a failed model call shaped. The trace's state stays about execution: OK unless a model call failed
(ERROR); a wrong answer is an OK trace whose `correct` feedback is false and whose `verdict` tag is `wrong`.

Per run (at the end of a job, over every record, resumed ones included): the per-problem table (`problems.json`,
MLflow's table artifact), the description (the summary row) and the problems as a dataset input.
"""

import json
import shlex
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.entities import AssessmentSource, AssessmentSourceType, Expectation, Feedback

from delegate.records import SampleRecord
from delegate.tables import accuracy_cell, summary_roles
from delegate.tracking import sql_fastpath
from delegate.tracking.mlflow_run import redacted_uri, sqlite_path

if TYPE_CHECKING:
    from mlflow.entities import Assessment

    from delegate.config.schema import DataConfig
    from delegate.tracking.mlflow_run import TrackedRun
    from delegate.tracking.traces import SpanRecord

# Assessment names: the columns of the Traces tab.
GOLD = "gold"
CORRECT = "correct"
# Trace tags (`tags.<name>` in a trace search).
STRATEGY_TAG = "strategy"
RUN_TAG = "run"
PROBLEM_TAG = "problem_id"
DATASET_TAG = "dataset"
VERDICT_TAG = "verdict"
# "true" when a model call failed and the strategy answered without it (the record's `degraded`), else "false".
DEGRADED_TAG = "degraded"
RIGHT, WRONG, FAILED = "right", "wrong", "error"
# The trace search for the problems not answered right (MLflow's `search_traces` filter_string; in the UI's Traces
# tab: Filters → Assessments → correct = False). `tags.verdict = 'wrong'` leaves out failed model calls.
WRONG_ANSWERS_FILTER = f"feedback.{CORRECT} = 'false'"
# Who said so: the scorer for the feedback, the dataset (its source) for the expectation.
SCORER = "delegate.scoring"
# The run's per-problem table (an MLflow table artifact) and its description.
PROBLEMS_TABLE = "problems.json"
NOTE_TAG = "mlflow.note.content"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
DATASET_CONTEXT = "eval"


def verdict(record: SampleRecord) -> str:
    """`right`, `wrong`, or `error` when a model call failed (the problem was not really answered)."""
    if record.error is not None:
        return FAILED
    return RIGHT if record.correct else WRONG


def problem_id(root: "SpanRecord") -> Any:
    """The problem a trace is about: the `id` in its root span's inputs (as `delegate.runner` opens it); None if none."""
    return root.inputs.get("id") if isinstance(root.inputs, dict) else None


def trace_tags(root: "SpanRecord", run_name: str | None) -> dict[str, str]:
    """The tags every problem's trace gets, from its root span: strategy, run name, problem id."""
    tags = {}
    if "strategy" in root.attributes:
        tags[STRATEGY_TAG] = str(root.attributes["strategy"])
    if run_name:
        tags[RUN_TAG] = run_name
    problem = problem_id(root)
    if problem is not None:
        tags[PROBLEM_TAG] = str(problem)
    return tags


def verdict_tags(record: SampleRecord) -> dict[str, str]:
    """The tags a trace gets from its problem's record: the dataset (with the problem id, the problem's identity
    across runs), the verdict, and whether a failed model call shaped the answer (`degraded`: true/false)."""
    return {DATASET_TAG: record.dataset, VERDICT_TAG: verdict(record), DEGRADED_TAG: str(record.degraded).lower()}


def rationale(record: SampleRecord) -> str:
    """Why the scorer said right or wrong: what it extracted, by which rule, against which gold, and the failed
    calls of a degraded problem."""
    if record.error is not None:
        return f"no answer: a model call failed ({record.error})"
    found = f"extracted {record.extracted!r}" if record.extracted is not None else "no answer found"
    degraded = (
        f"; degraded, answered after a model call failed ({'; '.join(record.failures)})" if record.degraded else ""
    )
    return f"{found} (rule: {record.extraction_rule}), gold {record.gold!r}{degraded}"


def trace_assessments(record: SampleRecord, trace_id: str) -> list["Assessment"]:
    """The gold answer (an expectation from the dataset) and the score (feedback from the scorer) of one trace."""
    gold = Expectation(
        name=GOLD,
        value=record.gold,
        trace_id=trace_id,
        source=AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id=record.dataset),
    )
    correct = Feedback(
        name=CORRECT,
        value=record.correct,
        trace_id=trace_id,
        rationale=rationale(record),
        source=AssessmentSource(source_type=AssessmentSourceType.CODE, source_id=SCORER),
        metadata={
            "extracted": "" if record.extracted is None else record.extracted,
            "extraction_rule": record.extraction_rule,
            "verdict": verdict(record),
        },
    )
    return [gold, correct]


@dataclass
class TraceVerdict:
    """What goes onto one trace already written: tags (new keys) and assessments."""

    trace_id: str
    tags: dict[str, str]
    assessments: list["Assessment"] = field(default_factory=list)


def log_trace_verdicts(store, trace_verdicts: list[TraceVerdict]) -> None:
    """Write the tags and assessments of traces already in `store`: in one transaction where
    `sql_fastpath.available(store)`, else one `set_trace_tag` / `create_assessment` call each (a tracking server has
    no batch call). The same rows land either way."""
    if not any(v.tags or v.assessments for v in trace_verdicts):
        return
    if sql_fastpath.available(store):
        sql_fastpath.insert_trace_verdicts(store, [(v.trace_id, v.tags, v.assessments) for v in trace_verdicts])
    else:
        log_one_by_one(store, trace_verdicts)


def log_one_by_one(store, trace_verdicts: list[TraceVerdict]) -> None:
    """The tags and assessments through the store's public calls, one each (any store)."""
    for item in trace_verdicts:
        for key, value in item.tags.items():
            store.set_trace_tag(item.trace_id, key, value)
        for assessment in item.assessments:
            store.create_assessment(assessment)


def problem_table(records: list[SampleRecord]) -> pd.DataFrame:
    """One row per problem, in id order: id, question, gold, extracted, rule, correct, verdict, degraded, tool calls,
    tokens per model (prompt + completion, as reported), latency (s), cost (USD), the error of a failed model call,
    and the failed calls the strategy went on without (joined by '; ', None when there were none)."""
    return pd.DataFrame(
        {
            "id": r.id,
            "question": r.question,
            "gold": r.gold,
            "extracted": r.extracted,
            "extraction_rule": r.extraction_rule,
            "correct": r.correct,
            "verdict": verdict(r),
            "degraded": r.degraded,
            "tool_calls": r.tool_calls,
            **{f"{role}_tokens": usage.tokens for role, usage in r.usage.items()},
            "latency_s": round(r.latency_s, 3),
            "cost_usd": r.cost_usd,
            "error": r.error,
            "failures": "; ".join(r.failures) or None,
        }
        for r in sorted(records, key=lambda r: r.id)
    )


def run_description(summary: dict[str, Any], dataset: str) -> str:
    """The run's summary row as the MLflow UI's description (Markdown): method, accuracy with its Wilson 95% CI and
    over the clean problems, tokens per problem per model, cost, latency, failed and degraded problems."""
    roles = summary_roles([summary])
    tokens = " + ".join(f"{summary[f'avg_{role}_tokens']:.1f} {role.upper()}" for role in roles)
    n_clean = int(summary["n_samples"] - summary["n_errors"] - summary["n_degraded"])
    clean = accuracy_cell(
        summary["accuracy_clean"], summary["accuracy_clean_ci_low"], summary["accuracy_clean_ci_high"]
    )
    return (
        f"**{summary['method']}** on {int(summary['n_samples'])} problems of `{dataset}`: "
        f"accuracy **{summary['accuracy']:.1%}** [{summary['accuracy_ci_low']:.1%}, {summary['accuracy_ci_high']:.1%}] "
        f"(Wilson 95% CI), {clean} on the {n_clean} clean problems · {tokens} tokens per problem · "
        f"{summary['avg_tool_calls']:.2f} tool calls per problem · cost {summary['cost_usd']:.4f} USD · "
        f"{summary['avg_latency_s']:.2f} s per problem · {int(summary['n_errors'])} failed · "
        f"{int(summary['n_degraded'])} degraded (answered after a model call failed)\n\n"
        f"Per problem: the Traces tab (its `{CORRECT}` column; Filters → Assessments → {CORRECT} = False lists the "
        f"wrong answers, the search `tags.{DEGRADED_TAG} = 'true'` the degraded ones) and the `{PROBLEMS_TABLE}` table under "
        "Artifacts."
    )


def dataset_source(data_cfg: "DataConfig") -> Any:
    """Where the problems came from, as an MLflow dataset source: the local file, else the Hub split."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    from delegate.data.loader import BUILTIN_DIR

    if data_cfg.path is not None or data_cfg.builtin is not None:
        path = Path(data_cfg.path).expanduser() if data_cfg.path is not None else BUILTIN_DIR / data_cfg.builtin
        return resolve_dataset_source(str(path.resolve()))
    return HuggingFaceDatasetSource(path=data_cfg.hub_path, config_name=data_cfg.hub_name, split=data_cfg.split)


def log_problems_input(client, run_id: str, records: list[SampleRecord], data_cfg: "DataConfig") -> None:
    """The job's problems (id, question, gold) as the run's dataset input, named by the split (e.g. gsm8k/test);
    its digest tells two samples of one split apart."""
    from mlflow.data import from_pandas
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    problems = pd.DataFrame(
        {"id": r.id, "question": r.question, "gold": r.gold} for r in sorted(records, key=lambda r: r.id)
    )
    with warnings.catch_warnings():
        # MLflow's hints for model schemas ("integer columns cannot hold missing values"; a local path that two of
        # its source types, both local, could read) and its own use of pandas say nothing about a table of problems.
        warnings.simplefilter("ignore")
        dataset = from_pandas(problems, source=dataset_source(data_cfg), targets="gold", name=records[0].dataset)
        entity = Dataset(**dataset.to_dict())
    client.log_inputs(run_id, [DatasetInput(entity, [InputTag(MLFLOW_DATASET_CONTEXT, DATASET_CONTEXT)])])


def log_problem_table(client, run_id: str, records: list[SampleRecord]) -> None:
    """The per-problem table as `problems.json`, in the format and with the run tag of `MlflowClient.log_table`, but
    replaced rather than appended to: a resumed run that had logged one holds each problem once."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PROBLEMS_TABLE
        problem_table(records).to_json(path, orient="split", index=False, date_format="iso")
        client.log_artifact(run_id, str(path))
    logged = json.loads(client.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
    entry = {"path": PROBLEMS_TABLE, "type": "table"}
    if entry not in logged:
        client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*logged, entry]))


def log_run_verdicts(
    run: "TrackedRun", records: list[SampleRecord], summary: dict[str, Any], data_cfg: "DataConfig"
) -> None:
    """At the end of a job: the per-problem table, the description and the dataset input of its run, over every
    record. A failure is one line on stderr; the job's results are unaffected."""
    if not records:
        return
    try:
        log_problem_table(run.client, run.run_id, records)
        run.client.set_tag(run.run_id, NOTE_TAG, run_description(summary, records[0].dataset))
        log_problems_input(run.client, run.run_id, records, data_cfg)
    except Exception as error:  # noqa: BLE001 - the UI's extras must never cost a result
        first_line = (str(error).splitlines() or [""])[0][:300]
        print(
            f"delegate: the run's per-problem table, description or dataset could not be logged to the MLflow store "
            f"(the results are unaffected): {type(error).__name__}: {first_line}",
            file=sys.stderr,
        )


def mlflow_command() -> str:
    """This environment's `mlflow` executable (absolute), or `mlflow` when it is not beside this Python."""
    beside = Path(sys.executable).with_name("mlflow")
    return str(beside) if beside.exists() else "mlflow"


def ui_hint(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """Two lines: the command that opens the MLflow UI on this store (a SQLite path made absolute, a password shown as
    ***), and this run's page in it; for a tracking server, the run's page there."""
    page = f"#/experiments/{experiment_id}/runs/{run_id}"
    if tracking_uri.startswith(("http://", "https://")):
        return f"MLflow UI: {redacted_uri(tracking_uri).rstrip('/')}/{page}"
    database = sqlite_path(tracking_uri)
    if database is not None and not database.is_absolute():
        query = tracking_uri.partition("?")[2]
        tracking_uri = f"sqlite:///{database.resolve()}" + (f"?{query}" if query else "")
    command = shlex.join([mlflow_command(), "ui", "--backend-store-uri", redacted_uri(tracking_uri)])
    return f"MLflow UI: {command}\nthis run: http://127.0.0.1:5000/{page}"
