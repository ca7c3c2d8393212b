"""`delegate-eval`: compose the Hydra config and run one evaluation job (or a sweep of them with -m)."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from delegate.config import CONFIG_DIR, register_schemas
from delegate.errors import ConfigError, RunFailed
from delegate.job import run_job

register_schemas()

# Absolute, so the console script finds conf/ wherever it is launched from.
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    try:
        summary = run_job(cfg, Path(hydra.utils.get_original_cwd()), Path(hydra_cfg.runtime.output_dir))
    except KeyboardInterrupt:
        # Every finished problem is already in samples.jsonl; the MLflow run is marked KILLED.
        print(f"interrupted; continue with: delegate-eval <same overrides> resume={cfg.resume or hydra_cfg.runtime.output_dir}", file=sys.stderr)
        sys.exit(130)
    except (ConfigError, RunFailed) as error:
        # A user-fixable problem: one line, no traceback. In a sweep the other jobs still run.
        print(f"error: {error}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return None
        sys.exit(2 if isinstance(error, ConfigError) else 1)
    return summary["accuracy"]


if __name__ == "__main__":
    main()
