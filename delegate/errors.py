"""Errors a user can cause: shown as one line naming the setting and the fix, never as a traceback."""


class ConfigError(ValueError):
    """A setting is wrong or something it needs is missing."""


class RunFailed(RuntimeError):
    """The job ran but produced nothing usable (every problem failed); its records are kept."""
