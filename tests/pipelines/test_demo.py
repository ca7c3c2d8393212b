"""`delegate-demo` run non-interactively against the scripted server: the delegation and the answer are shown live."""

import subprocess
import sys
from pathlib import Path

from pipelines.demo import split_arguments
from tests.support.scripted_server import Reply, ScriptedServer

DELEGATE_DEMO = Path(sys.executable).with_name("delegate-demo")
QUESTION = "A baker puts 6 muffins into each box. He fills 8 boxes. How many muffins did he pack?"


def router_llm(request: dict) -> Reply:
    """Delegate once, then answer with what the tool said."""
    if request.get("tools") and not any(m["role"] == "tool" for m in request["messages"]):
        return Reply(content="I need 6 times 8.", tool_calls=[{"name": "ask_math_assistant", "arguments": '{"question": "What is 6*8?"}'}],
                     prompt_tokens=120, completion_tokens=20)
    return Reply(content="So he packed \\boxed{48} muffins.", prompt_tokens=160, completion_tokens=9)


def run_demo(tmp_path: Path, llm: ScriptedServer, slm: ScriptedServer, *arguments: str, stdin: str | None = None):
    return subprocess.run(
        [str(DELEGATE_DEMO), *arguments, "llm=openai-compatible", f"llm.base_url={llm.base_url}",
         "slm=openai-compatible", f"slm.base_url={slm.base_url}",
         "llm.price_input_usd_per_1m=2.5", "llm.price_output_usd_per_1m=10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, input=stdin,
    )


def test_question_and_overrides_are_told_apart():
    question, overrides = split_arguments(["What", "is", "2+2=?", "llm=local", "slm.max_new_tokens=8", "+x.y=1"])
    assert question == "What is 2+2=?"
    assert overrides == ["llm=local", "slm.max_new_tokens=8", "+x.y=1"]


def test_demo_shows_the_delegation_streaming_and_the_answer(tmp_path):
    with ScriptedServer(router_llm) as llm, ScriptedServer(default=Reply(content="6*8 = 48. So \\boxed{48}.", prompt_tokens=40, completion_tokens=12)) as slm:
        done = run_demo(tmp_path, llm, slm, QUESTION)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "DELEGATE" in out and "What is 6*8?" in out
    # The SLM's text reached the terminal through the streaming path.
    assert slm.requests[0]["stream"] is True
    assert "6*8 = 48. So \\boxed{48}." in out
    assert "RESULT" in out and "Answer: 48." in out
    assert "FINAL 48" in out
    assert "1 tool calls" in out
    assert "llm (openai-compatible): 2 calls, 280 prompt + 29 completion tokens" in out
    assert "slm (openai-compatible): 1 calls, 40 prompt + 12 completion tokens" in out
    assert f"${(280 * 2.5 + 29 * 10) / 1e6:.6f}" in out
    assert out.index("DELEGATE") < out.index("RESULT") < out.index("FINAL")


def test_demo_without_a_question_asks_until_quit(tmp_path):
    with ScriptedServer(router_llm) as llm, ScriptedServer(default=Reply(content="\\boxed{48}")) as slm:
        done = run_demo(tmp_path, llm, slm, stdin=f"{QUESTION}\n{QUESTION}\nquit\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("FINAL 48") == 2
    assert done.stdout.count("question (empty or 'quit' to stop)>") == 3


def test_demo_config_mistake_is_one_line(tmp_path):
    done = subprocess.run([str(DELEGATE_DEMO), "hi", "llm.max_tokns=3"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "max_tokns" in done.stderr
    assert "Traceback" not in done.stderr
