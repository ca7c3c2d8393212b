"""`delegate-reproduce <run folder | MLflow run id> [key=value ...]`: re-run a run from its saved config and compare metrics."""

import argparse
import sys
from pathlib import Path

from delegate.cli import quiet_libraries
from delegate.errors import ConfigError, RunFailed, RunStopped
from delegate.reproduce import REPRODUCES_TAG, comparison_table, reproduce, verdict


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="delegate-reproduce",
        description="Rebuild a run's composed config from its saved .hydra/, run it again as a new MLflow run "
        f"tagged {REPRODUCES_TAG}=<run id>, and print every metric beside the original's.",
        epilog="Exit status: 0 when it ran and every metric not expected to vary (timing, cache) is equal, or when "
        "overrides were given; 1 when such a metric differs without overrides, or the job failed; 2 for a mistake "
        "in the arguments.",
    )
    parser.add_argument(
        "run", help="a run folder of delegate-eval (outputs/<date>/<time>-<strategy>) or an MLflow run id"
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the saved config, e.g. samples=50")
    parser.add_argument(
        "--tracking-uri",
        help="the MLflow store holding the run; default: for a folder, the store its config used; "
        "for a run id, $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in this directory",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="the reproduction's run folder; default outputs/reproduce/<date>/<time>-<strategy>",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the reproduction, print the comparison, and exit with the status the epilog describes."""
    arguments = parse_arguments(argv)
    quiet_libraries()
    print(f"reproducing {arguments.run} with overrides: {' '.join(arguments.overrides) or 'none'}")
    try:
        result = reproduce(arguments.run, arguments.overrides, Path.cwd(), arguments.tracking_uri, arguments.output_dir)
    except KeyboardInterrupt:
        print("interrupted; the reproduction's MLflow run is marked KILLED", file=sys.stderr)
        sys.exit(130)
    except (ConfigError, RunFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2 if isinstance(error, ConfigError) else 1)
    except RunStopped as error:
        print(f"stopped: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"\noriginal run {result.original_run_id} vs reproduction {result.run_id} ({result.output_dir})")
    print(f"overrides: {' '.join(result.overrides) or 'none'}; relative paths resolved against {result.launch_dir}")
    print(comparison_table(result.comparisons))
    print(verdict(result.comparisons))
    if result.original_stopped:
        # The counts differ for a known reason: say it, rather than leave it to look like a broken reproduction.
        print(
            f"note: the original run was stopped early ({result.original_stopped}); the reproduction ran without "
            "that budget, so n_samples and what depends on it differ: resume the original first to compare whole runs"
        )
    if result.unexpected_differences:
        if result.overrides:
            print("the overrides changed the config, so these differences are expected")
        else:
            sys.exit(1)


if __name__ == "__main__":
    main()
