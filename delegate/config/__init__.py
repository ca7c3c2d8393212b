"""Typed config: the schemas of every config group, where the configs are found, and the model roles of a config.
Composing and typing a config (which registers the strategies' and backends' schemas) is `delegate.compose`, above."""

from delegate.config.search_path import CONFIG_DIR, config_dirs

__all__ = ["CONFIG_DIR", "config_dirs"]
