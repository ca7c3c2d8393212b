"""A regular (non-editable) install of a copy of this checkout runs `delegate-eval` from any directory: the configs
ship inside the package, and a user's own ./conf adds options to them."""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from delegate.testing.scripted_server import Reply, ScriptedServer

REPO = Path(__file__).resolve().parents[1]
MY_DATA = "defaults:\n  - data_schema\n  - _self_\nname: mydata\nbuiltin: sample.jsonl\n"


def copy_checkout(to: Path) -> Path:
    """The checkout's files as git sees them (tracked, and new ones not ignored): no .venv, no build leftovers."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, to / name)
    return to


def venv_with_these_dependencies(folder: Path) -> Path:
    """A new virtual environment that sees this environment's packages (so nothing is downloaded, no CUDA torch),
    but not its editable install of delegate; its python.

    `--system-site-packages` reaches the base interpreter's packages, not a virtual environment's, so this one's
    site-packages are added by a .pth file of plain paths: their own .pth files (the editable install's finder)
    are not run.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(folder)], check=True)
    python = folder / "bin" / "python"
    new_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(new_site, "delegate-test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def run(*command: str, cwd: Path, env: dict[str, str], timeout_s: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow  # builds and installs a wheel, then runs a job (about a minute)
def test_a_regular_install_runs_a_job_from_another_directory(tmp_path):
    source = copy_checkout(tmp_path / "source")
    python = venv_with_these_dependencies(tmp_path / "venv")
    # Nothing of the checkout on the path: what runs is what was installed.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DELEGATE_CONFIG_DIR", "MLFLOW_TRACKING_URI")}
    run(
        str(python),
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--ignore-installed",
        "--disable-pip-version-check",
        "--quiet",
        str(source),
        cwd=tmp_path,
        env=env,
    )
    shutil.rmtree(source)  # an editable install would break now; a regular one must not care

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "conf" / "data").mkdir(parents=True)
    installed = run(str(python), "-c", "import delegate; print(delegate.__file__)", cwd=elsewhere, env=env).stdout
    assert Path(installed.strip()).is_relative_to(tmp_path / "venv")
    delegate_eval = str(tmp_path / "venv" / "bin" / "delegate-eval")

    shown = run(delegate_eval, "--cfg", "job", cwd=elsewhere, env=env).stdout
    assert "name: gsm8k" in shown and "strategy:" in shown

    # A user's own dataset, one YAML file in ./conf of the launch directory, is an option of the installed package.
    (elsewhere / "conf" / "data" / "mydata.yaml").write_text(MY_DATA, encoding="utf-8")
    with ScriptedServer(default=Reply(content="So \\boxed{4}.", prompt_tokens=10, completion_tokens=3)) as server:
        run(
            delegate_eval,
            "data=mydata",
            "samples=2",
            "strategy=llm",
            "llm=openai-compatible",
            f"llm.base_url={server.base_url}",
            "cache.enabled=false",
            cwd=elsewhere,
            env=env,
        )
    assert len(server.requests) == 2
    [summary] = elsewhere.glob("outputs/*/*/summary.json")
    assert json.loads(summary.read_text())["n_samples"] == 2
    assert (elsewhere / "mlflow.db").is_file()
