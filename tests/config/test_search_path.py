"""A user's own config folders (./conf of the launch directory, $DELEGATE_CONFIG_DIR) on Hydra's real search path."""

import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from delegate.cli import group_options
from delegate.compose import compose_config
from delegate.config import CONFIG_DIR
from delegate.config.search_path import PROVIDER, USER_CONFIG_DIR_ENV, user_config_dirs
from tests.support.cli import DELEGATE_EVAL

MY_DATA = """\
defaults:
  - data_schema
  - _self_
name: mydata
path: {path}
"""
MY_GPT_4O = """\
defaults:
  - openai_schema
  - _self_
name: gpt-4o
model: gpt-4o-2024-08-06
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def launch_dir(tmp_path, monkeypatch):
    """An empty launch directory, made the current one, with $DELEGATE_CONFIG_DIR unset."""
    folder = tmp_path / "launch"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv(USER_CONFIG_DIR_ENV, raising=False)
    return folder


def test_a_data_file_in_the_launch_directorys_conf_is_a_new_option(launch_dir):
    write(launch_dir / "conf/data/mydata.yaml", MY_DATA.format(path="problems.jsonl"))
    cfg = compose_config(["data=mydata"])
    assert (cfg.data.name, cfg.data.path) == ("mydata", "problems.jsonl")
    # The packaged options are all still there, and --help lists the new one beside them.
    assert compose_config(["data=sample"]).data.builtin == "sample.jsonl"
    assert {"mydata", "sample", "gsm8k"} <= set(group_options("data"))


def test_the_folder_named_by_the_environment_variable_is_searched_first(launch_dir, tmp_path, monkeypatch):
    named = tmp_path / "team-configs"
    write(named / "data/mydata.yaml", MY_DATA.format(path="from-env.jsonl"))
    write(launch_dir / "conf/data/mydata.yaml", MY_DATA.format(path="from-launch-dir.jsonl"))
    monkeypatch.setenv(USER_CONFIG_DIR_ENV, str(named))
    assert user_config_dirs() == [named.resolve(), (launch_dir / "conf").resolve()]
    assert compose_config(["data=mydata"]).data.path == "from-env.jsonl"


def test_a_users_file_replaces_the_packaged_option_of_its_name(launch_dir):
    write(launch_dir / "conf/llm/gpt-4o.yaml", MY_GPT_4O)
    cfg = compose_config([])
    assert cfg.llm.model == "gpt-4o-2024-08-06"
    # Its schema's defaults, not the packaged file's prices: the user's file is the whole option.
    assert cfg.llm.price_input_usd_per_1m == 0


def test_a_missing_folder_in_the_environment_variable_is_one_line_naming_it(launch_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(USER_CONFIG_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigCompositionException, match=f"^{USER_CONFIG_DIR_ENV}=.*nowhere: no such folder"):
        compose_config([])


def test_another_hydra_apps_search_path_is_left_alone(launch_dir, tmp_path):
    write(launch_dir / "conf/data/mydata.yaml", MY_DATA.format(path="problems.jsonl"))
    other = write(tmp_path / "other-app/config.yaml", "greeting: hello\n").parent
    with initialize_config_dir(config_dir=str(other), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True)
    providers = [entry.provider for entry in cfg.hydra.runtime.config_sources]
    assert PROVIDER not in providers and cfg.greeting == "hello"


def test_the_console_script_runs_with_the_users_option(launch_dir):
    write(launch_dir / "conf/data/mydata.yaml", MY_DATA.format(path="problems.jsonl"))
    shown = subprocess.run(
        [str(DELEGATE_EVAL), "data=mydata", "--cfg", "job"], cwd=launch_dir, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert "name: mydata" in shown.stdout and "path: problems.jsonl" in shown.stdout
    assert CONFIG_DIR.is_dir() and CONFIG_DIR.parent.name == "delegate"
