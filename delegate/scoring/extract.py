"""Find the final answer in a model's reply and name the rule that found it."""

import re
from collections.abc import Callable
from dataclasses import dataclass

# Commas only count as thousands separators in groups of three, so "3,4,5" is a list, not 345.
_NUMBER = r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|(?<![\w.])-?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
_NUMBER_THEN_WORDS_RE = re.compile(rf"(?P<number>{_NUMBER})\s*[a-zA-Z][a-zA-Z\s]*")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_ANSWER_IS_RE = re.compile(r"\banswer(?:\s+is|[*_\s]*:)[\s:*_]*(?P<content>[^\n]*)", re.IGNORECASE)
# A comma followed by a space ends the claim too; thousands separators never have a space after them.
_SENTENCE_END_RE = re.compile(r"[.;,]\s|[.;]$")
_HASHES_RE = re.compile(r"####\s*(?P<content>[^\n]*)")
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
# Only numeric fractions become a/b; symbolic ones stay LaTeX for math_verify.
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*([\d.,]+)\s*\}")
_FRAC_SHORT_RE = re.compile(r"\\[dt]?frac\s*(\d)(\d)")
_THOUSANDS_COMMA_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_LATEX_COMMAND_RE = re.compile(r"\\[a-zA-Z]+")
# Formatting that never changes the value: spacing macros, currency, percent, degrees, math delimiters.
_NOISE = ("{,}", "\\!", "\\,", "\\;", "\\ ", "\\$", "$", "\\%", "%", "^\\circ", "^{\\circ}", "\\(", "\\)", "\\[", "\\]")


@dataclass(frozen=True)
class Extraction:
    """The normalized answer (None when nothing was found) and the rule that produced it."""

    answer: str | None
    rule: str


def _braced_content(text: str, open_index: int) -> str | None:
    """Content between the brace at open_index and its matching close, or None if unbalanced."""
    depth = 0
    for index in range(open_index, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[open_index + 1 : index]
    return None


def _find_boxed(text: str) -> str | None:
    for match in reversed(list(_BOXED_RE.finditer(text))):
        rest = text[match.end() :]
        stripped = rest.lstrip()
        if stripped.startswith("{"):
            content = _braced_content(text, len(text) - len(stripped))
        elif stripped:
            # "\boxed 5": without braces LaTeX boxes a single token.
            content = stripped.split(maxsplit=1)[0]
        else:
            content = None
        if content is not None:
            return content
    return None


def _find_answer_is(text: str) -> str | None:
    # The phrase often introduces prose ("the answer is as follows:"), so only a claim holding a digit counts.
    for match in reversed(list(_ANSWER_IS_RE.finditer(text))):
        content = _SENTENCE_END_RE.split(match["content"], maxsplit=1)[0]
        if any(char.isdigit() for char in content):
            return content
    return None


def _find_hashes(text: str) -> str | None:
    matches = _HASHES_RE.findall(text)
    return matches[-1] if matches else None


def _find_last_number(text: str) -> str | None:
    numbers = _NUMBER_RE.findall(_latex_to_plain(text))
    return numbers[-1] if numbers else None


_RULES: tuple[tuple[str, Callable[[str], str | None]], ...] = (
    ("boxed", _find_boxed),
    ("answer_is", _find_answer_is),
    ("hashes", _find_hashes),
    ("last_number", _find_last_number),
)


def _latex_to_plain(text: str) -> str:
    """Unwrap \\text{...}, turn simple fractions into a/b and drop formatting that never changes the value."""
    text = text.replace("\u2212", "-")
    previous = None
    while previous != text:  # wrappers and fractions may nest
        previous = text
        text = _TEXT_WRAPPER_RE.sub(r"\1", text)
        text = _FRAC_RE.sub(r"\1/\2", text)
    text = _FRAC_SHORT_RE.sub(r"\1/\2", text)
    for noise in _NOISE:
        text = text.replace(noise, "")
    return _THOUSANDS_COMMA_RE.sub("", text)


def normalize_answer(raw: str) -> str | None:
    """Reduce an extracted answer to a bare value like "1000", "3/4" or "18.00"; None when nothing is left."""
    # After an "=" comes the result: "x = 5", "3 \times 4 = 12", "= 7".
    answer = _latex_to_plain(raw).rsplit("=", 1)[-1]
    answer = answer.strip().strip("*").strip().rstrip(".").strip()
    number_then_words = _NUMBER_THEN_WORDS_RE.fullmatch(answer)
    if number_then_words:  # "18 dollars"
        return number_then_words["number"]
    if re.search(r"[a-zA-Z]", _LATEX_COMMAND_RE.sub("", answer)):  # "she has 5 left"
        numbers = _NUMBER_RE.findall(answer)
        if numbers:
            return numbers[-1]
    return answer or None


def extract_answer_with_rule(text: str) -> Extraction:
    """The answer found by the first rule that applies: boxed, "the answer is", "####", then the last number."""
    for rule, find in _RULES:
        raw = find(text)
        answer = normalize_answer(raw) if raw is not None else None
        if answer is not None:
            return Extraction(answer=answer, rule=rule)
    return Extraction(answer=None, rule="none")


def extract_answer(text: str) -> str | None:
    """The normalized final answer in text, or None."""
    return extract_answer_with_rule(text).answer
