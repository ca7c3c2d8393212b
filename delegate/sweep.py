"""At the end of a Hydra sweep (-m), print one summary table with a row per job and save it as sweep_summary.csv."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from delegate.records import SUMMARY_FILE
from delegate.report import summary_table


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        summaries = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{SUMMARY_FILE}"))]
        if not summaries:
            return
        pd.DataFrame(summaries).to_csv(sweep_dir / "sweep_summary.csv", index=False)
        print(f"\nSweep summary ({sweep_dir}):")
        print(summary_table(summaries))
