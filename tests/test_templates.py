"""Templates from config: named placeholders filled once; every other brace (LaTeX, JSON) kept."""

from delegate.templates import fill


def test_named_placeholders_are_filled_and_other_braces_kept():
    assert fill('Put it in \\boxed{}; send {"{argument}": "..."}', argument="question") == (
        'Put it in \\boxed{}; send {"question": "..."}'
    )


def test_a_value_is_never_read_as_a_template():
    # A tool name the LLM made up is quoted back as it is, even when it looks like a placeholder.
    assert fill("no tool named '{name}'; the only tool is '{tool}'", name="{tool}", tool="ask") == (
        "no tool named '{tool}'; the only tool is 'ask'"
    )


def test_unknown_placeholders_stay_as_written():
    assert fill("{answer} ({last_sentence})", answer="48") == "48 ({last_sentence})"
