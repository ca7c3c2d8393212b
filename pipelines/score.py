"""`delegate-score <run folder | MLflow run id> [key=value ...]`: re-score a finished run without calling any model."""

import argparse
import sys
from pathlib import Path

from delegate.cli import quiet_libraries
from delegate.errors import ConfigError
from delegate.reproduce import comparison_table
from delegate.rescore import RESCORES_TAG, rescore


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="delegate-score",
        description="Judge a finished run's answers again with the scorers its saved config names (after the "
        "overrides), calling no model, and log the result as a new MLflow run tagged "
        f"{RESCORES_TAG}=<run id>, with every metric printed beside the original's.",
        epilog="Scorers: numeric (one number), symbolic (LaTeX answers, math-verify), exact (the same text). "
        "Examples: delegate-score outputs/2026-12-08/10-00-00-000000-router data.scorer=symbolic; "
        "delegate-score <run id> 'data.scorers=[exact]' --tracking-uri http://127.0.0.1:5000. "
        "Exit status: 0 when it ran; 2 for a mistake in the arguments.",
    )
    parser.add_argument(
        "run", help="a run folder of delegate-eval (outputs/<date>/<time>-<strategy>) or an MLflow run id"
    )
    parser.add_argument(
        "overrides", nargs="*", help="key=value overrides of the saved config, e.g. data.scorer=symbolic"
    )
    parser.add_argument(
        "--tracking-uri",
        help="the MLflow store holding the run; default: for a folder, the store its config used; "
        "for a run id, $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in this directory",
    )
    parser.add_argument(
        "--output-dir", type=Path, help="the re-scoring's folder; default outputs/rescore/<date>/<time>-<strategy>"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Re-score, print the comparison with the original, exit 0 (2 for a mistake in the arguments)."""
    arguments = parse_arguments(argv)
    quiet_libraries()
    try:
        result = rescore(arguments.run, arguments.overrides, Path.cwd(), arguments.tracking_uri, arguments.output_dir)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(
        f"\noriginal run {result.original_run_id} re-scored as {result.run_id} ({result.output_dir}) "
        f"with {', '.join(result.scorers)}; 0 model requests"
    )
    # Nothing ran again: timings and cache figures are the original's, so every difference is the scorers'.
    print(comparison_table(result.comparisons, new="re-scored", varying=False))
    print(f"{result.n_changed} of {result.n_problems} verdicts of the primary scorer ({result.scorers[0]}) changed")


if __name__ == "__main__":
    main()
