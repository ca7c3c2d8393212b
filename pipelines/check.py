"""`delegate-check [overrides]`: before a run, a ✓/✗ line for each thing the job needs; exit 1 if any is missing."""

import sys
from pathlib import Path

from hydra.errors import HydraException

from delegate.check import run_checks
from delegate.cli import config_error_line, quiet_libraries
from delegate.compose import compose_config
from delegate.errors import ConfigError

USAGE = """\
usage: delegate-check [OVERRIDE ...]

Checks, for the config delegate-eval would compose from the same overrides, one line each:
Python and key packages; the settings delegate-eval checks before every job (numbers in range, URLs,
the device and dtype of in-process models and their weights, the API keys the config names, never
their values, the MLflow store's URI, the response cache, every row of the dataset); then a
one-token call to each model whose settings passed (an in-process one is loaded instead) and the
MLflow store (SQLite: a write rolled back; nothing is created or left behind).

  delegate-check experiment=reference
  delegate-check llm=openai-compatible llm.base_url=http://127.0.0.1:8000/v1 slm=local

Exit status: 0 all passed, 1 something failed (each ✗ says the fix; a `!` line, a failure of a role the strategy
does not use, does not count), 2 a bad override."""


def main(argv: list[str] | None = None) -> None:
    """Compose the config from `argv` (Hydra overrides), print one line per check, exit 0, 1 or 2."""
    quiet_libraries()
    overrides = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in overrides):
        print(USAGE)
        return
    options = [arg for arg in overrides if arg.startswith("-")]
    failed = 0
    try:
        if options:
            raise ConfigError(
                f"{options[0]}: not an option of delegate-check; give Hydra overrides (key=value) or --help"
            )
        for result in run_checks(compose_config(overrides), Path.cwd()):
            print(result.line(), flush=True)
            failed += result.failed
    except (ConfigError, HydraException) as error:
        # The same line delegate-eval gives (did you mean ...?, the options); Hydra's own span lines: one line here.
        print(f"error: {config_error_line(error) or ' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(2)
    if failed:
        print(f"{failed} check{'s' if failed > 1 else ''} failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
