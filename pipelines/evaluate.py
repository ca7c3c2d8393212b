"""`delegate-eval`: compose the Hydra config and run one evaluation job (or a sweep of them with -m)."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from delegate.config import CONFIG_DIR, register_schemas, typed_config
from delegate.errors import ConfigError, RunFailed
from delegate.job import run_job
from delegate.reproduce import saved_config_arguments

register_schemas()

# Absolute, so the console script finds conf/ wherever it is launched from.
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def evaluate(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    try:
        # A run's saved .hydra/config.yaml (--config-path) has no defaults list: Hydra composes it untyped.
        cfg = typed_config(cfg)
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


def main() -> None:
    """The console script: Hydra's app, with --config-dir/--config-path at a run's saved .hydra/ loading that config."""
    sys.argv = [sys.argv[0], *saved_config_arguments(sys.argv[1:], Path.cwd())]
    evaluate()


if __name__ == "__main__":
    main()
