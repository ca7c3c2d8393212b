"""Hydra discovers this plugin in the `hydra_plugins` namespace package: it puts the user's config folders on the
search path of delegate's configs (see delegate.config.search_path)."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class DelegateUserConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from delegate.config.search_path import add_user_config_dirs

        add_user_config_dirs(search_path)
