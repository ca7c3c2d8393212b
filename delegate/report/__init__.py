"""Reports on runs: `build_report`, the full comparison `delegate-report` writes (the short table a job prints is
`delegate.tables.summary_table`)."""

from typing import Any

# Loaded on first use: importing the package should not pay for matplotlib and scipy.
_BUILD_NAMES = ("BuiltReport", "build_report", "default_out_dir")


def __getattr__(name: str) -> Any:
    if name in _BUILD_NAMES:
        from delegate.report import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_BUILD_NAMES]
