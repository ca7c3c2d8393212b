"""The names of the files delegate writes into a run folder, a sweep folder and a report folder; imports nothing.

A job's run folder (Hydra's `outputs/<date>/<time>-<strategy>`, or `<sweep folder>/<n>-<strategy>`):

    samples.jsonl      one record per finished problem (delegate.records), appended as each one finishes
    summary.json       the job's metrics, written when it ends
    run_info.json      {"run_id": <its MLflow run>}, written as the run opens: what resume= and reproduce read
    .delegate.lock     held while a job writes the folder (an OS file lock; the empty file stays)
    .hydra/            Hydra's: config.yaml (the composed config), hydra.yaml, overrides.yaml

A sweep folder (`outputs/multirun/<date>/<time>`) holds its jobs' run folders, multirun.yaml, sweep_summary.csv
and report/; a report folder (report/, or `outputs/reports/<date>/<time>` for delegate-report) holds report.md,
report.json, the CSVs and the PNGs below.
"""

SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
RUN_INFO_FILE = "run_info.json"
LOCK_FILE = ".delegate.lock"

# Hydra's output subfolder of a run folder (hydra.output_subdir) and what Hydra saves in it.
HYDRA_DIR = ".hydra"
SAVED_CONFIG_FILE = "config.yaml"
SAVED_HYDRA_FILE = "hydra.yaml"
SAVED_OVERRIDES_FILE = "overrides.yaml"
# What Hydra saves in a sweep folder.
SAVED_MULTIRUN_FILE = "multirun.yaml"

SWEEP_SUMMARY_FILE = "sweep_summary.csv"
SWEEP_REPORT_DIR = "report"

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
COMPARISON_CSV = "comparison.csv"
PAIRS_CSV = "pairs.csv"
ORACLE_CSV = "oracle.csv"
DELEGATION_CSV = "delegation.csv"
ACCURACY_PLOT = "accuracy_ci.png"
TOKENS_PLOT = "tokens_per_problem.png"
LATENCY_PLOT = "latency.png"
COST_PLOT = "accuracy_vs_cost.png"
