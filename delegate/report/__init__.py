"""Reports on runs: the short table a job prints, and `build_report`, the full comparison `delegate-report` writes."""

from typing import Any

from delegate.report.summary import summary_table

# Loaded on first use: every job imports summary_table, and should not pay for matplotlib and scipy.
_BUILD_NAMES = ("BuiltReport", "build_report", "default_out_dir")


def __getattr__(name: str) -> Any:
    if name in _BUILD_NAMES:
        from delegate.report import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["summary_table", *_BUILD_NAMES]
