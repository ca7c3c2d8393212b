"""At the end of a Hydra sweep (-m): one summary table with a row per job (sweep_summary.csv), then the full report."""

import json
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from delegate.errors import ConfigError
from delegate.records import SUMMARY_FILE
from delegate.report import summary_table
from delegate.tracking.mlflow_run import redacted_uri, resolve_tracking_uri

REPORT_DIR = "report"


def report_command(sweep_dir: Path, tracking_uri: str) -> str:
    """The delegate-report command that compares a sweep's runs (printed, so a user can run it again; a password in
    the URI shows as ***)."""
    return shlex.join(["delegate-report", "--sweep", str(sweep_dir), "--tracking-uri", redacted_uri(tracking_uri)])


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        launch_dir = Path(config.hydra.runtime.cwd)
        sweep_dir = sweep_dir if sweep_dir.is_absolute() else launch_dir / sweep_dir
        summaries = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{SUMMARY_FILE}"))]
        if not summaries:
            return
        pd.DataFrame(summaries).to_csv(sweep_dir / "sweep_summary.csv", index=False)
        print(f"\nSweep summary ({sweep_dir}):")
        print(summary_table(summaries))
        self.report(config, sweep_dir, launch_dir)

    @staticmethod
    def report(config: DictConfig, sweep_dir: Path, launch_dir: Path) -> None:
        """The report over the sweep's runs (paired tests, oracle, plots), written to <sweep>/report and logged."""
        from delegate.report import build_report

        tracking_uri = resolve_tracking_uri(config.tracking, launch_dir)
        command = report_command(sweep_dir, tracking_uri)
        try:
            built = build_report(tracking_uri, sweep_dir / REPORT_DIR, sweep_dir=sweep_dir)
        except ConfigError as error:
            print(f"no report for this sweep: {error}\nonce that is fixed: {command}")
            return
        print(f"\n{built.markdown}")
        print(f"report written to {built.out_dir}; report run {built.report_run_id}. Again with: {command}")
