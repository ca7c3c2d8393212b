"""Hydra discovers these plugins in the `hydra_plugins` namespace package: one puts the user's config folders on
the search path of delegate's configs, the other serves every model role's group (`llm/`, `slm/`, a strategy's
`verifier/`) from the one `model/` folder (see delegate.config.search_path)."""

import os

from hydra._internal.core_plugins.file_config_source import FileConfigSource
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.config_source import ConfigLoadError
from hydra.plugins.search_path_plugin import SearchPathPlugin


class DelegateUserConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from delegate.config.search_path import add_user_config_dirs

        add_user_config_dirs(search_path)


class ModelRoleConfigs(FileConfigSource):
    """A config folder seen with each model role's group mapped to its `model/` folder: `llm/gpt-4o.yaml` is
    `model/gpt-4o.yaml`, so a model's YAML is written once and chosen for any role (`llm=local`, `slm=local`)."""

    @staticmethod
    def scheme() -> str:
        from delegate.config.search_path import ROLE_SOURCE_SCHEME

        return ROLE_SOURCE_SCHEME

    @staticmethod
    def _in_model_folder(config_path: str) -> str | None:
        from delegate.config.search_path import model_path

        return model_path(config_path)

    def load_config(self, config_path: str):
        mapped = self._in_model_folder(config_path)
        if mapped is None:
            raise ConfigLoadError(f"Config not found : {config_path} (not a model role's group)")
        return super().load_config(mapped)

    def available(self) -> bool:
        return super().is_group("")

    def is_group(self, config_path: str) -> bool:
        mapped = self._in_model_folder(config_path)
        return mapped is not None and super().is_group(mapped)

    def is_config(self, config_path: str) -> bool:
        mapped = self._in_model_folder(config_path)
        return mapped is not None and super().is_config(mapped)

    def list(self, config_path: str, results_filter):
        mapped = self._in_model_folder(config_path)
        if mapped is None or not super().is_group(mapped):
            return []
        files: list[str] = []
        for file_name in os.listdir(os.path.join(self.path, mapped)):
            self._list_add_result(files, os.path.join(config_path, file_name), file_name, results_filter)
        return sorted(set(files))
