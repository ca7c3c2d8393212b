"""`delegate-demo` against scripted servers: the LLM's and the SLM's text stream live, then the answer and the tally."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

from delegate.testing.scripted_server import Reply, ScriptedServer
from pipelines.demo import main, readable_arguments, split_arguments

DELEGATE_DEMO = Path(sys.executable).with_name("delegate-demo")
QUESTION = "A baker puts 6 muffins into each box. He fills 8 boxes. How many muffins did he pack?"


def router_llm(request: dict) -> Reply:
    """Delegate once (the sub-question with a non-ASCII sign, JSON-escaped as many servers send it), then answer
    with what the tool said."""
    if request.get("tools") and not any(m["role"] == "tool" for m in request["messages"]):
        return Reply(
            content="I need 6 times 8.",
            tool_calls=[{"name": "ask_math_assistant", "arguments": '{"question": "What is 6\\u00d78?"}'}],
            prompt_tokens=120,
            completion_tokens=20,
        )
    return Reply(content="So he packed \\boxed{48} muffins.", prompt_tokens=160, completion_tokens=9)


@pytest.fixture
def servers():
    with (
        ScriptedServer(router_llm) as llm,
        ScriptedServer(
            default=Reply(content="6*8 = 48. So \\boxed{48}.", prompt_tokens=40, completion_tokens=12)
        ) as slm,
    ):
        yield llm, slm


def settings(llm: ScriptedServer, slm: ScriptedServer) -> list[str]:
    return [
        "llm=openai-compatible",
        f"llm.base_url={llm.base_url}",
        "llm.model=scripted-llm",
        "slm=openai-compatible",
        f"slm.base_url={slm.base_url}",
        "slm.model=scripted-slm",
        "llm.price_input_usd_per_1m=2.5",
        "llm.price_output_usd_per_1m=10",
    ]


def test_question_and_overrides_are_told_apart():
    question, overrides = split_arguments(["What", "is", "2+2=?", "llm=local", "slm.max_new_tokens=8", "+x.y=1"])
    assert question == "What is 2+2=?"
    assert overrides == ["llm=local", "slm.max_new_tokens=8", "+x.y=1"]


def test_tool_arguments_read_as_text():
    assert readable_arguments('{"question": "Was ist 6\\u00d78?"}') == '{"question": "Was ist 6×8?"}'
    assert readable_arguments('{"question": "6*8?"') == '{"question": "6*8?"'


def test_demo_streams_both_models_then_the_answer_and_tally(servers, capsys):
    llm, slm = servers
    main([QUESTION, *settings(llm, slm)])
    out = capsys.readouterr().out
    # Both models' text reached the terminal through the streaming path.
    assert all(r["stream"] is True for r in llm.requests) and slm.requests[0]["stream"] is True
    assert "LLM  I need 6 times 8.\n" in out and "LLM  So he packed \\boxed{48} muffins.\n" in out
    assert out.count("I need 6 times 8.") == 1
    assert "SLM  [" in out and "6*8 = 48. So \\boxed{48}." in out
    # The tool call's arguments as text, not JSON escapes.
    assert 'tool call ask_math_assistant {"question": "What is 6×8?"}' in out and "\\u00d7" not in out
    assert "DELEGATE" in out and "What is 6×8?" in out
    assert "RESULT" in out and "Answer: 48." in out
    assert "FINAL 48" in out
    assert out.index("DELEGATE") < out.index("RESULT") < out.index("FINAL")
    # The tally, in the right number, each model by its name (its model id).
    assert "TALLY (1 tool call)" in out
    assert "llm (scripted-llm): 2 calls, 280 prompt tokens + 29 completion tokens" in out
    assert "slm (scripted-slm): 1 call, 40 prompt tokens + 12 completion tokens" in out
    assert f"${(280 * 2.5 + 29 * 10) / 1e6:.6f}" in out


def test_a_server_that_cannot_stream_tool_turns_is_asked_again(servers, capsys):
    """llama-cpp-python's function calling answers a streamed request with tools by an empty stream."""
    _, slm = servers

    def no_streaming_with_tools(request: dict) -> Reply:
        if request.get("stream") and request.get("tools"):
            return Reply(raw_chunks=[], usage="omit")
        return router_llm(request)

    with ScriptedServer(no_streaming_with_tools) as llm:
        main([QUESTION, *settings(llm, slm)])
    out = capsys.readouterr().out
    assert [r.get("stream", False) for r in llm.requests] == [True, False, True, False]
    assert "LLM  I need 6 times 8.\n" in out and 'tool call ask_math_assistant {"question": "What is 6×8?"}' in out
    assert "FINAL 48" in out and "llm (scripted-llm): 2 calls, 280 prompt tokens" in out


def test_one_model_alone_shows_its_reply(servers, capsys):
    llm, slm = servers
    main(["What is 2+2?", "strategy=llm", *settings(llm, slm)])
    out = capsys.readouterr().out
    assert "REPLY So he packed \\boxed{48} muffins." in out and "FINAL 48" in out
    assert "TALLY (0 tool calls)" in out and "llm (scripted-llm): 1 call," in out


def test_demo_without_a_question_asks_until_quit(servers, capsys, monkeypatch):
    llm, slm = servers
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{QUESTION}\n{QUESTION}\nquit\n"))
    main(settings(llm, slm))
    out = capsys.readouterr().out
    assert out.count("FINAL 48") == 2
    assert out.count("question (empty or 'quit' to stop)>") == 3


def test_help_is_never_a_question(servers, capsys):
    llm, slm = servers
    main(["--help", *settings(llm, slm)])
    out = capsys.readouterr().out
    assert llm.requests == [] and slm.requests == []
    assert out.startswith("delegate-demo: ask a math question")
    assert "    * router" in out and "_schema" not in out
    assert "\n  data" not in out and "\n  tracking" not in out
    assert 'delegate-demo "A baker fills 8 boxes' in out


def test_an_unknown_flag_is_not_a_question(servers, capsys):
    llm, slm = servers
    with pytest.raises(SystemExit) as stop:
        main(["--verbose", QUESTION, *settings(llm, slm)])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("error: --verbose is not a delegate-demo option")
    assert llm.requests == []


@pytest.mark.parametrize(
    "override, line",
    [
        ("llm.max_tokns=3", "error: unknown key 'llm.max_tokns' — did you mean 'llm.max_tokens'?\n"),
        ("strategy=oracle", "error: strategy=oracle is not an option; use one of llm, router, slm\n"),
    ],
)
def test_a_config_mistake_is_one_line(capsys, override, line):
    with pytest.raises(SystemExit) as stop:
        main(["hi", override])
    assert stop.value.code == 2
    assert capsys.readouterr().err == line


def test_the_console_script_answers_live(servers, tmp_path):
    llm, slm = servers
    done = subprocess.run(
        [str(DELEGATE_DEMO), QUESTION, *settings(llm, slm)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FINAL 48" in done.stdout and done.stderr == ""
