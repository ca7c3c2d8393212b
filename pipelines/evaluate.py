"""`delegate-eval`: compose the Hydra config and run one evaluation job (or a sweep of them with -m)."""

import shlex
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from delegate.cli import config_errors_as_one_line, help_text, job_configs, quiet_libraries, wants_help
from delegate.compose import register_schemas, typed_config
from delegate.config import CONFIG_DIR
from delegate.errors import ConfigError, RunFailed, RunStopped
from delegate.job import run_job
from delegate.preflight import check_settings
from delegate.redaction import redact
from delegate.reproduce import saved_config_arguments
from delegate.sweep import SweepSummary

# At import, so that a launcher's worker process (joblib), which imports this module to run a job, has them too; a
# plugin module that fails is reported by main() as one line.
try:
    register_schemas()
    _SCHEMA_ERROR: ConfigError | None = None
except ConfigError as _error:
    _SCHEMA_ERROR = _error

SUMMARY = (
    "run one evaluation job: the problems of a data set through a strategy (the LLM alone, the SLM alone, or the LLM "
    "delegating to the SLM through a tool call), scored, with accuracy, tokens, latency and cost in an MLflow run; "
    "with -m, a sweep of such jobs ending with one table and the report."
)
USAGE = [
    "delegate-eval [group=option ...] [key=value ...]",
    "delegate-eval -m [group=a,b ...] [key=x,y ...]       a sweep: one job per combination",
    "delegate-eval [overrides] --cfg job                  print the composed config, run nothing",
]
EXAMPLES = [
    (
        "delegate-eval experiment=local",
        "offline: the router on 4 of the 24 built-in problems, SmolLM2 in-process as LLM and SLM, results in ./mlflow.db",
    ),
    (
        "delegate-eval strategy=llm llm=openai-compatible llm.base_url=http://127.0.0.1:8000/v1 llm.model=Qwen/Qwen2.5-7B-Instruct",
        "GSM8K test with a model behind any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp)",
    ),
    (
        "delegate-eval -m experiment=compare samples=10 device=cuda",
        "the study's comparison: GPT-4o alone, GPT-4o delegating to Qwen2.5-Math, Qwen2.5-Math alone, on 10 GSM8K "
        "problems (seed 123), then the summary table and the report",
    ),
    ("delegate-eval -m experiment=compare-local", "the same comparison offline, SmolLM2 in both roles"),
    (
        "delegate-eval -m strategy=llm,router,slm seed=1,2,3 hydra/launcher=joblib",
        "nine jobs in parallel processes (hydra/launcher=submitit_slurm: on a SLURM cluster)",
    ),
    ("delegate-report --sweep outputs/multirun/<date>/<time>", "the report over a sweep's runs, again"),
    ("delegate-eval <same overrides> resume=<run folder or MLflow run id>", "continue an interrupted job"),
]


# Absolute, so the console script finds delegate/conf/ wherever it is launched from (the user's config folders are
# added to the search path by the hydra_plugins.delegate_config_search_path plugin).
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def evaluate(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    # Again here: a launcher may run this job in another process, where main() never ran.
    quiet_libraries()
    try:
        # A run's saved .hydra/config.yaml (--config-path) has no defaults list: Hydra composes it untyped.
        cfg = typed_config(cfg)
        summary = run_job(cfg, Path(hydra.utils.get_original_cwd()), Path(hydra_cfg.runtime.output_dir))
    except KeyboardInterrupt:
        # Every finished problem is already in samples.jsonl; the MLflow run is marked KILLED.
        print(f"interrupted; continue with: {continue_command(hydra_cfg, cfg)}", file=sys.stderr)
        sys.exit(130)
    except (ConfigError, RunFailed, RunStopped) as error:
        # A user-fixable problem, or a run-level limit reached (its records kept): one line, no traceback. In a
        # sweep the other jobs still run.
        if isinstance(error, RunStopped):
            print(
                f"stopped: {error}; continue with: {continue_command(hydra_cfg, cfg, error.resume_with)}",
                file=sys.stderr,
            )
        else:
            print(f"error: {error}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return None
        sys.exit(2 if isinstance(error, ConfigError) else 1)
    return summary["accuracy"]


def continue_command(hydra_cfg: DictConfig, cfg: DictConfig, resume_with: dict[str, str] | None = None) -> str:
    """The command that resumes this job: its own overrides (as typed, a sweep's too), those in `resume_with`
    ({key: value}) put in their place, then resume=<its run folder>; redacted (`delegate.redaction.redact`)."""
    resume_with = resume_with or {}
    kept = [o for o in hydra_cfg.overrides.task if o.partition("=")[0] not in {"resume", *resume_with}]
    folder = cfg.resume or hydra_cfg.runtime.output_dir
    # As it was invoked (.venv/bin/delegate-eval is not on every PATH), so that the line can be pasted.
    program = sys.argv[0] if Path(sys.argv[0]).name == "delegate-eval" else "delegate-eval"
    # Through the one redaction step: an override may carry a credential (a URL's userinfo, `?api-key=`), which the
    # user then puts back by hand rather than see it printed.
    return redact(shlex.join([program, *kept, *(f"{k}={v}" for k, v in resume_with.items()), f"resume={folder}"]))


def main(argv: list[str] | None = None) -> None:
    """The console script: Hydra's app, with --config-dir/--config-path at a run's saved .hydra/ loading that config,
    our own --help, and every job's config composed and its settings checked (delegate.preflight) before Hydra makes
    a folder: a config Hydra can't compose (a misspelt key, an unknown option) or a wrong setting is one `error:`
    line, exit status 2, and nothing is left behind.

    `argv`: the arguments (default: the command line's).
    """
    arguments = sys.argv[1:] if argv is None else argv
    quiet_libraries()
    if _SCHEMA_ERROR is not None:
        print(f"error: {_SCHEMA_ERROR}", file=sys.stderr)
        sys.exit(2)
    if wants_help(arguments):
        print(help_text("delegate-eval", SUMMARY, USAGE, EXAMPLES), end="")
        return
    sys.argv = [sys.argv[0], *saved_config_arguments(arguments, Path.cwd())]
    with config_errors_as_one_line():
        if uses_conf(arguments):
            configs = job_configs(overrides_of(arguments), sweep=is_sweep(arguments))
            if runs_jobs(arguments):
                try:
                    for cfg in configs:
                        check_settings(cfg, Path.cwd())
                except ConfigError as error:
                    print(f"error: {error}", file=sys.stderr)
                    sys.exit(2)
        evaluate()
    # Read once and cleared: the callback's class keeps it, and main may run again in this process.
    outcome, SweepSummary.outcome = SweepSummary.outcome, None
    if outcome is not None:
        unfinished, jobs = outcome
        if unfinished:
            # Scripts and CI must see a sweep that lost jobs; each job's own error is printed above.
            print(
                f"error: {len(unfinished)} of {jobs} sweep jobs did not finish ({', '.join(unfinished)}); "
                "their errors are above",
                file=sys.stderr,
            )
            sys.exit(1)


def _flags(arguments: list[str]) -> set[str]:
    return {a.partition("=")[0] for a in arguments if a.startswith("-")}


def overrides_of(arguments: list[str]) -> list[str]:
    """The Hydra overrides on a command line (key=value, ~key), without its flags and their values."""
    return [a for a in arguments if not a.startswith("-") and ("=" in a or a.startswith("~"))]


def is_sweep(arguments: list[str]) -> bool:
    return bool(_flags(arguments) & {"-m", "--multirun"})


def uses_conf(arguments: list[str]) -> bool:
    """Whether the command line composes delegate/conf/'s config, not a saved one (--config-path/--config-dir/--config-name)."""
    return not _flags(arguments) & {"--config-path", "-cp", "--config-dir", "-cd", "--config-name", "-cn"}


def runs_jobs(arguments: list[str]) -> bool:
    """Whether Hydra will run the job(s), not only print something (--cfg, --info, --hydra-help, --shell-completion)."""
    return not _flags(arguments) & {
        "--cfg",
        "-c",
        "--info",
        "-i",
        "--hydra-help",
        "--shell-completion",
        "-sc",
        "--version",
    }


if __name__ == "__main__":
    main()
