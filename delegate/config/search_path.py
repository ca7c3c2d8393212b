"""Where Hydra looks for delegate's configs: the user's own config folders first, then the packaged delegate/conf/."""

import os
from pathlib import Path

# The packaged configs (config.yaml and one folder per group), installed with the package.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
# A folder of the user's own configs, named by this environment variable, and `conf/` of the launch directory.
USER_CONFIG_DIR_ENV = "DELEGATE_CONFIG_DIR"
LAUNCH_CONFIG_DIR = "conf"
# Hydra's name for the search path entries added here (`--info searchpath` shows it).
PROVIDER = "delegate-user"
# Every model role's group (llm/, slm/, ...) is served from this one folder of each config folder, through a config
# source of this scheme (hydra_plugins/delegate_config_search_path): a model's YAML is written once, for any role.
MODEL_GROUP = "model"
ROLE_SOURCE_SCHEME = "delegate-roles"
ROLE_PROVIDER = "delegate-roles"


def user_config_dirs() -> list[Path]:
    """The user's config folders, in the order Hydra searches them: $DELEGATE_CONFIG_DIR, then `./conf` of the
    current (launch) directory when it exists; never the packaged CONFIG_DIR itself.

    Each holds files laid out like delegate/conf/ (`data/mydata.yaml`, `llm/my-model.yaml`): a new file adds an
    option to its group (`data=mydata`); a file of the same name as a packaged one replaces it. Raises Hydra's
    ConfigCompositionException, naming the setting, when $DELEGATE_CONFIG_DIR is set but not a folder.
    """
    from hydra.errors import ConfigCompositionException

    folders = []
    named = os.environ.get(USER_CONFIG_DIR_ENV)
    if named:
        folder = Path(named).expanduser()
        if not folder.is_dir():
            raise ConfigCompositionException(
                f"{USER_CONFIG_DIR_ENV}={named}: no such folder; point it at a folder of your own configs "
                f"(e.g. one holding data/<name>.yaml) or unset it"
            )
        folders.append(folder.resolve())
    launch = Path.cwd() / LAUNCH_CONFIG_DIR
    if launch.is_dir():
        folders.append(launch.resolve())
    return [folder for folder in dict.fromkeys(folders) if folder != CONFIG_DIR]


def config_dirs() -> list[Path]:
    """Every folder delegate's configs come from, the first winning for a file in several: the user's, then
    CONFIG_DIR."""
    return [*user_config_dirs(), CONFIG_DIR]


def model_path(config_path: str) -> str | None:
    """`config_path` (e.g. 'llm/gpt-4o.yaml', 'slm') in the `model/` folder when its group is a model role
    ('model/gpt-4o.yaml', 'model'); None for any other group."""
    from delegate.config.roles import role_groups

    head, separator, rest = config_path.partition("/")
    return MODEL_GROUP + separator + rest if head in role_groups() else None


def _folders_of(group: str) -> list[str]:
    """The folder names a group's options may be in: its own, and for a model role also `model/` (first)."""
    return [MODEL_GROUP, group] if model_path(group) is not None else [group]


def option_files(group: str) -> dict[str, Path]:
    """{option: its file} for the `<group>/*.yaml` files of every config folder (for a model role, `model/*.yaml`
    too), by option name; a user's file wins over a packaged one of the same name. Empty for a group no folder has."""
    found: dict[str, Path] = {}
    for folder in reversed(config_dirs()):
        for name in _folders_of(group):
            found |= {path.stem: path for path in (folder / name).glob("*.yaml")}
    return dict(sorted(found.items()))


def is_group(group: str) -> bool:
    """Whether some config folder has a `<group>/` folder (for a model role, a `model/` folder)."""
    return any((folder / name).is_dir() for folder in config_dirs() for name in _folders_of(group))


def primary_config() -> Path:
    """The `config.yaml` Hydra composes first: a user folder's, if one has it, else the packaged one."""
    return next(folder / "config.yaml" for folder in config_dirs() if (folder / "config.yaml").is_file())


def add_user_config_dirs(search_path) -> None:
    """Put `user_config_dirs()` just before the packaged CONFIG_DIR on a Hydra `ConfigSearchPath` whose primary
    config folder is CONFIG_DIR, and each config folder's `model/` (as every role's group) after them; any other
    search path (another Hydra app, a run's saved `.hydra/`) is left alone."""
    from hydra.core.config_search_path import SearchPathQuery

    main = next((entry for entry in search_path.get_path() if entry.provider == "main"), None)
    if main is None or Path(main.path.removeprefix("file://")).resolve() != CONFIG_DIR:
        return
    for folder in user_config_dirs():
        search_path.prepend(PROVIDER, f"file://{folder}", anchor=SearchPathQuery(provider="main"))
    # After every plain folder: a role's group in a folder (an older user's llm/my-model.yaml) wins over model/.
    for folder in config_dirs():
        search_path.append(ROLE_PROVIDER, f"{ROLE_SOURCE_SCHEME}://{folder}")
