"""`delegate-eval` with a bad setting or a bad data file: exit status 2, one `error:` line naming the setting, no
traceback, and nothing left in the launch directory (no outputs/, no mlflow.db, no mlruns/ or mlartifacts/)."""

import os
import socket
import subprocess
import sys
import time

import pytest
import torch

from delegate.testing.scripted_server import Reply
from pipelines.evaluate import main
from tests.support.cli import DELEGATE_EVAL

# A served LLM on a port nothing listens on: a row that wrongly passed the check would fail on its first call.
BASE = [
    "llm=openai-compatible",
    "llm.base_url=http://127.0.0.1:9/v1",
    "llm.max_retries=0",
    "strategy=llm",
    "data=sample",
    "samples=2",
]
IN_PROCESS_SLM = ["strategy=slm", "slm=local"]
SECRET = "pw-sentinel-0123456789"
ROW = '{"question": "What is 1+1?", "answer": "1+1=2\\n#### 2"}\n'
# Data files a row writes into the launch directory before running.
DATA_FILES = {
    "README.md": "# Grade-school math\n\nThe data is in test.jsonl.\n",
    "rows.csv": "question,answer\nWhat is 1+1?,2\n",
    "empty.jsonl": "",
    "broken.jsonl": ROW + ROW + '{"question": "What is 2+2?", "answer": \n' + ROW,
    "no_answer.jsonl": ROW + '{"question": "What is 2+2?"}\n' + ROW,
    "no_question.jsonl": '{"prompt": "What is 1+1?", "answer": "#### 2"}\n' * 3,
}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_only_folder(launch_dir) -> str:
    folder = launch_dir / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        pytest.skip("the user can write to a read-only folder (root)")
    return str(folder / "cache" / "responses.sqlite")


def a_file(launch_dir) -> str:
    (launch_dir / "notes.txt").write_text("a file, not a folder")
    return str(launch_dir / "notes.txt" / "responses.sqlite")


# (overrides, the start of the error line after "error: "); {dir} is the launch directory, {port} a closed port.
CASES = {
    "device-unknown": (
        [*IN_PROCESS_SLM, "device=tpu"],
        "device=tpu: not a device; use one of auto, cpu, cuda, cuda:N, mps",
    ),
    "device-absent": ([*IN_PROCESS_SLM, "device=cuda"], "device=cuda: torch "),
    "gguf-missing": ([*IN_PROCESS_SLM, "slm.gguf_file=missing.gguf"], "slm.gguf_file=missing.gguf: not in "),
    "model-folder-missing": (
        [*IN_PROCESS_SLM, "slm.model=/nonexistent/model", "slm.gguf_file=null"],
        "slm.model=/nonexistent/model: no such folder",
    ),
    "hub-model-offline": (
        ["strategy=slm", "slm=qwen2.5-math-1.5b", "slm.model=delegate-tests/not-cached"],
        "slm.model=delegate-tests/not-cached: not in the Hugging Face cache and HF_HUB_OFFLINE=1",
    ),
    "base-url-not-a-url": (["llm.base_url=not-a-url"], "llm.base_url=not-a-url: not an http(s) URL"),
    "base-url-credentials": (
        [f"llm.base_url=http://user:{SECRET}@127.0.0.1:9/v1"],
        "llm.base_url: carries credentials",
    ),
    "temperature": (["llm.temperature=-1"], "llm.temperature=-1.0: must be at least 0"),
    "max-tokens": (["llm.max_tokens=0"], "llm.max_tokens=0: must be at least 1"),
    "timeout": (["llm.timeout_s=0"], "llm.timeout_s=0.0: must be greater than 0"),
    "max-retries": (["llm.max_retries=-1"], "llm.max_retries=-1: must be at least 0"),
    "requests-in-flight": (["llm.max_requests_in_flight=0"], "llm.max_requests_in_flight=0: must be at least 1"),
    "api-key-unset": (
        ["llm.api_key_env=DELEGATE_TEST_UNSET_VAR"],
        "llm.api_key_env: $DELEGATE_TEST_UNSET_VAR is not set",
    ),
    "tracking-closed-port": (
        ["tracking.uri=http://127.0.0.1:{port}"],
        "tracking.uri=http://127.0.0.1:{port}: no answer within 3 s",
    ),
    "tracking-scheme": (["tracking.uri=bogus://x"], "tracking.uri=bogus://x: unknown scheme 'bogus'"),
    "cache-read-only": (["cache.path={read_only}"], "cache.path={read_only}: cannot be written"),
    "cache-under-a-file": (["cache.path={a_file}"], "cache.path={a_file}: cannot be written"),
    "concurrency": (["concurrency=0"], "concurrency=0: must be at least 1"),
    "max-error-rate": (["max_error_rate=1.5"], "max_error_rate=1.5: must be between 0 and 1"),
    "max-cost": (["max_cost_usd=0"], "max_cost_usd=0.0: must be greater than 0"),
    "samples-too-many": (["samples=500"], "samples=500: data.builtin=sample.jsonl has 24 problems"),
    "interpolation": (["slm.device=${{nope}}"], "slm.device: Interpolation key 'nope' not found"),
    "plus-typo": (
        ["+smaples=3"],
        "smaples: no such setting (added with +; nothing would read it); did you mean samples?",
    ),
    # Hydra's own composition errors.
    "strategy-oracle": (["strategy=oracle"], "strategy=oracle is not an option; use one of llm, router, slm"),
    "key-typo": (["smaples=3"], "unknown key 'smaples' — did you mean 'samples'?"),
    "type-error": (["samples=abc"], "samples=abc: not an integer"),
    # A sweep: every job is checked before the sweep's folder exists.
    "sweep-one-bad-job": (
        ["-m", "strategy=llm,slm", "slm=local", "slm.gguf_file=missing.gguf"],
        "slm.gguf_file=missing.gguf: not in ",
    ),
    "sweep-one-bad-value": (["-m", "samples=1,0"], "samples=0: must be at least 1"),
    # Data files.
    "data-readme": (["data.path={dir}/README.md"], "data.path={dir}/README.md: not a JSON-lines file (line 1: "),
    "data-csv": (["data.path={dir}/rows.csv"], "data.path={dir}/rows.csv: not a JSON-lines file (line 1: "),
    "data-empty": (["data.path={dir}/empty.jsonl"], "data.path={dir}/empty.jsonl: the file is empty"),
    "data-broken-line": (["data.path={dir}/broken.jsonl"], "data.path={dir}/broken.jsonl: line 3 is not valid JSON"),
    "data-row-without-answer": (
        ["data.path={dir}/no_answer.jsonl"],
        "data.path={dir}/no_answer.jsonl: line 2 has no 'answer' field, which the other rows have; fix that line",
    ),
    "data-no-question-field": (
        ["data.path={dir}/no_question.jsonl"],
        "data.path={dir}/no_question.jsonl: no row has a 'question' field (line 1 has prompt, "
        "answer); set data.question_field",
    ),
    "data-template-field": (
        ["data.path={dir}/no_question.jsonl", "data.question_template='{{Body}} {{Question}}'"],
        "data.path={dir}/no_question.jsonl: no row has a 'Body' field (line 1 has prompt, answer); "
        "fix data.question_template='{{Body}} {{Question}}' to use the fields the file has",
    ),
    "data-file-missing": (
        ["data=svamp"],
        "data.file=svamp/test.jsonl: no such file in the data folder {dir}/data "
        "(DELEGATE_DATA_DIR unset, so ./data); set DELEGATE_DATA_DIR",
    ),
    "data-scorer-unknown": (
        ["data.scorer=numerc"],
        "data.scorer=numerc is unknown; use one of ['exact', 'numeric', 'symbolic'] (one of your own: name the module that registers it in DELEGATE_PLUGINS)",
    ),
}


@pytest.fixture
def launch_dir(tmp_path, monkeypatch):
    """An empty folder to launch from, without a tracking URI or API keys from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["delegate-eval"])
    for name in ("MLFLOW_TRACKING_URI", "OPENAI_API_KEY", "DELEGATE_TEST_UNSET_VAR", "DELEGATE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_setting_is_one_line_exit_2_and_leaves_nothing(launch_dir, capsys, monkeypatch, case):
    overrides, expected = CASES[case]
    if case == "device-absent" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    if case == "hub-model-offline":
        import huggingface_hub.constants

        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for name, text in DATA_FILES.items():
        (launch_dir / name).write_text(text)
    fill = {"dir": launch_dir, "port": closed_port()}
    if case == "cache-read-only":
        fill["read_only"] = read_only_folder(launch_dir)
    if case == "cache-under-a-file":
        fill["a_file"] = a_file(launch_dir)
    before = sorted(p.name for p in launch_dir.iterdir())
    started_s = time.perf_counter()
    with pytest.raises(SystemExit) as stop:
        main([*BASE, *(o.format(**fill) for o in overrides)])
    elapsed_s = time.perf_counter() - started_s
    out, err = capsys.readouterr()
    assert stop.value.code == 2, err
    assert err.startswith(f"error: {expected.format(**fill)}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert SECRET not in out + err
    assert sorted(p.name for p in launch_dir.iterdir()) == before
    assert not {"outputs", "mlflow.db", "mlruns", "mlartifacts", ".cache"} & set(before)
    # A server that does not answer is said in seconds, not after MLflow's minutes of retries.
    assert elapsed_s < 10


def test_rows_whose_gold_is_not_a_number_are_skipped_with_one_warning(launch_dir, capsys, scripted_server):
    scripted_server.default = Reply(content="So \\boxed{2}.", prompt_tokens=10, completion_tokens=3)
    (launch_dir / "rows.jsonl").write_text(ROW + '{"question": "Name a colour.", "answer": "#### blue"}\n' + ROW)
    main(
        [
            "llm=openai-compatible",
            f"llm.base_url={scripted_server.base_url}",
            "strategy=llm",
            f"data.path={launch_dir}/rows.jsonl",
            "data.name=rows",
        ]
    )
    out, err = capsys.readouterr()
    warning = "1 of 3 rows skipped, gold answer not a number (the first: line 2); counted as n_skipped, not scored"
    assert (out + err).count(warning) == 1, out + err
    # Only the usable problems were asked.
    assert len(scripted_server.requests) == 2
    [log] = launch_dir.glob("outputs/*/*/evaluate.log")
    assert log.read_text().count(warning) == 1


def test_the_console_script_says_one_line_and_leaves_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    started_s = time.perf_counter()
    done = subprocess.run(
        [str(DELEGATE_EVAL), *BASE, f"tracking.uri=http://127.0.0.1:{closed_port()}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: tracking.uri=http://127.0.0.1:") and done.stderr.count("\n") == 1
    assert done.stdout == "" and list(tmp_path.iterdir()) == []
    assert time.perf_counter() - started_s < 30


def test_a_resume_mistake_is_one_line_and_leaves_nothing(launch_dir, capsys, scripted_server):
    """A resume that can't go on (no such run folder, a changed setting, a folder in use) is refused before Hydra
    makes the new job's folder; a changed setting is answered with the overrides the run was started with."""
    from delegate.resume import run_folder_lock

    scripted_server.default = Reply(content="So \\boxed{2}.")
    (launch_dir / "rows.jsonl").write_text(ROW * 3)
    job = [
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "strategy=llm",
        f"data.path={launch_dir}/rows.jsonl",
        "data.name=rows",
        "cache.enabled=false",
    ]
    main(job)
    [folder] = [p.parent for p in launch_dir.glob("outputs/*/*/run_info.json")]
    capsys.readouterr()
    before = sorted(str(p) for p in launch_dir.rglob("*"))
    relative = str(folder.relative_to(launch_dir))

    def refused(*overrides: str) -> str:
        with pytest.raises(SystemExit) as stop:
            main([*job, *overrides])
        _, err = capsys.readouterr()
        assert stop.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert sorted(str(p) for p in launch_dir.rglob("*")) == before
        return err

    assert refused("resume=outputs/no-such-run").startswith(
        "error: resume=outputs/no-such-run: "
    ) and "is not a run folder of delegate-eval" in refused("resume=outputs/no-such-run")
    changed = refused("llm.max_tokens=64", f"resume={relative}")
    assert changed.startswith(
        f"error: resume={relative}: the config differs from the interrupted run's in llm.max_tokens;"
    )
    assert f"resume with the overrides it was started with: delegate-eval {' '.join(job)} resume={relative}" in changed
    with run_folder_lock(folder, None):
        assert refused(f"resume={relative}").startswith(
            f"error: resume={relative}: another delegate-eval is writing this run folder now"
        )
    run_id = "0123456789abcdef0123456789abcdef"
    assert refused(f"resume={run_id}").startswith(
        f"error: resume={run_id}: neither a run folder of delegate-eval nor a run id in sqlite:///"
    )


def test_a_resume_from_a_launch_folder_without_the_store_creates_none(launch_dir, capsys, monkeypatch):
    (launch_dir / "run").mkdir()
    (launch_dir / "run" / "run_info.json").write_text('{"run_id": "0123456789abcdef0123456789abcdef"}\n')
    elsewhere = launch_dir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for resume in (str(launch_dir / "run"), "0123456789abcdef0123456789abcdef"):
        with pytest.raises(SystemExit) as stop:
            main([*BASE, f"resume={resume}"])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1, err
        assert err.startswith(f"error: resume={resume}: there is no MLflow store at sqlite:///{elsewhere}/mlflow.db")
        assert list(elsewhere.iterdir()) == []
