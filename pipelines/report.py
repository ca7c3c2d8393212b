"""`delegate-report`: compare finished delegate runs from MLflow; write and print the report, and log it as a run."""

import argparse
import logging
import sys
from pathlib import Path

from delegate.cli import quiet_libraries
from delegate.config.schema import TrackingConfig
from delegate.errors import ConfigError
from delegate.report import build_report, default_out_dir
from delegate.tracking.mlflow_run import redacted_uri, resolve_tracking_uri


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="delegate-report",
        description="Compare finished delegate-eval runs: accuracy with CIs, paired tests, oracle and delegation "
        "analysis, plots. Compares the runs named by --runs and --sweep plus every finished run of each "
        f"--experiment; with none of them, every finished run of {TrackingConfig().experiment}.",
    )
    parser.add_argument(
        "--experiment",
        nargs="+",
        default=[],
        metavar="NAME",
        help="MLflow experiment(s): all their finished delegate runs",
    )
    parser.add_argument("--runs", nargs="+", default=[], metavar="ID", help="MLflow run ids")
    parser.add_argument(
        "--sweep",
        type=Path,
        metavar="DIR",
        help="a `delegate-eval -m` sweep folder (outputs/multirun/<date>/<time>): its jobs' runs",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write the report (default outputs/reports/<date>/<time>)"
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow store (default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)",
    )
    parser.add_argument("--no-log", action="store_true", help="write the files only; log no MLflow report run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    quiet_libraries()
    launch_dir = Path.cwd()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    tracking_uri = resolve_tracking_uri(TrackingConfig(uri=arguments.tracking_uri), launch_dir)
    out_dir = arguments.out or default_out_dir(launch_dir)
    try:
        built = build_report(
            tracking_uri,
            out_dir.resolve(),
            experiments=arguments.experiment,
            run_ids=arguments.runs,
            sweep_dir=arguments.sweep,
            log_run=not arguments.no_log,
        )
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(built.markdown)
    print(f"report written to {built.out_dir} ({len(built.files)} files)")
    if built.report_run_id:
        print(
            f"report run: {built.report_run_id} in experiment '{built.experiment_name}' at {redacted_uri(tracking_uri)}"
        )


if __name__ == "__main__":
    main()
