"""Find the final answer in a model's reply and name the rule that found it: the finders every scorer draws on
(boxed, "the answer is", "####") and the numeric scorer's reading of numbers."""

import re
from collections.abc import Callable
from fractions import Fraction

from delegate.scoring.base import Extraction

# Commas only count as thousands separators in groups of three, so "3,4,5" is a list, not 345.
_DECIMAL = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
# Exponents are bounded to three digits so an evaluated power stays small (10^999 at most).
_EXPONENT = r"[-+]?\d{1,3}(?![\d.])"
# One value, read whole: a number, then maybe what makes it a mixed number (1 3/4), scientific notation (5 x 10^3,
# 5e3), a power (2^10) or a fraction (3/4). An exponent with no number in front (m^2, x^2) belongs to a unit or a
# variable and is no value at all.
_VALUE_RE = re.compile(
    rf"(?<![\w.])(?P<sign>-)?(?P<lead>{_DECIMAL})(?:"
    r"[ \t\u00a0]+(?P<numerator>\d+)/(?P<denominator>\d+)(?![\d/]|\.\d)"
    rf"|(?:[eE]|\s*(?:\\times|\\cdot|[x×·⋅∙*])\s*10\s*\^\s*)(?P<power_of_ten>{_EXPONENT})"
    rf"|\s*\^\s*(?P<power>{_EXPONENT})"
    r"|/(?P<over>\d+)"
    r")?|(?P<detached_exponent>\^\s*[-+]?\d+)"
)
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺"
_SUPERSCRIPT_RE = re.compile(f"[{_SUPERSCRIPTS}]+")
_FROM_SUPERSCRIPT = str.maketrans(_SUPERSCRIPTS, "0123456789-+")
_BRACED_EXPONENT_RE = re.compile(r"\^\s*\{\s*([-+]?\d+)\s*\}")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_ANSWER_IS_RE = re.compile(r"\banswer(?:\s+is|[*_\s]*:)[\s:*_]*", re.IGNORECASE)
# A comma followed by a space ends the claim too; thousands separators never have a space after them.
_SENTENCE_END_RE = re.compile(r"[.;,]\s|[.;]$")
# A claim after "####" ends at the line's end or at the next "####".
_HASHES_RE = re.compile(r"####\s*(?P<content>(?:(?!####)[^\n])*)")
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
# Only numeric fractions become a/b; symbolic ones stay LaTeX for math_verify. A digit just before the
# fraction is a mixed number's whole part (3\frac{1}{4}) and stays apart from it: "3 1/4", never "31/4".
_WHOLE_BEFORE_FRAC = r"(?:(?P<whole>\d)(?:\s|\\[,;:! ]|~)*)?"
_FRAC_RE = re.compile(
    _WHOLE_BEFORE_FRAC + r"\\[dt]?frac\s*\{\s*(?P<numerator>-?[\d.,]+)\s*\}\s*\{\s*(?P<denominator>[\d.,]+)\s*\}"
)
_FRAC_SHORT_RE = re.compile(_WHOLE_BEFORE_FRAC + r"\\[dt]?frac\s*(?P<numerator>\d)(?P<denominator>\d)")
_THOUSANDS_COMMA_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_LATEX_COMMAND_RE = re.compile(r"\\[a-zA-Z]+")
# Formatting that never changes the value: spacing macros, currency, percent, degrees, math delimiters.
_NOISE = ("\\!", "\\,", "\\;", "\\$", "$", "\\%", "%", "^\\circ", "^{\\circ}", "\\(", "\\)", "\\[", "\\]")


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


def find_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox) in text, nested braces kept whole; None when there is none."""
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


def _has_digit(claim: str) -> bool:
    return any(char.isdigit() for char in claim)


def find_answer_is(
    text: str, sentence_end: re.Pattern[str] = _SENTENCE_END_RE, counts: Callable[[str], bool] = _has_digit
) -> str | None:
    """The claim after the last "answer is" / "answer:" phrase whose claim `counts`, up to `sentence_end` or the
    line's end; None when there is none.

    The last claim wins ("the answer is 12. Wait: the answer is 14."). The phrase often introduces prose ("the
    answer is as follows:"), so by default only a claim holding a digit counts, and a comma and a space end it.
    """
    for match in reversed(list(_ANSWER_IS_RE.finditer(text))):
        line_end = text.find("\n", match.end())
        line = text[match.end() : line_end if line_end >= 0 else len(text)]
        content = sentence_end.split(line, maxsplit=1)[0]
        if counts(content):
            return content
    return None


def find_hashes(text: str) -> str | None:
    """The last non-empty claim after "####" (to the line's end or the next "####"); None when there is none."""
    claims = [claim for claim in _HASHES_RE.findall(text) if claim.strip()]
    return claims[-1] if claims else None


def find_last_number(text: str) -> str | None:
    """The last value in text (LaTeX fractions and formatting read as plain text), as `read_values` reads it."""
    values = read_values(_latex_to_plain(text))
    return values[-1] if values else None


_RULES: tuple[tuple[str, Callable[[str], str | None]], ...] = (
    ("boxed", find_boxed),
    ("answer_is", find_answer_is),
    ("hashes", find_hashes),
    ("last_number", find_last_number),
)


def _plain_fraction(match: re.Match[str]) -> str:
    fraction = f"{match['numerator']}/{match['denominator']}"
    return f"{match['whole']} {fraction}" if match["whole"] else fraction


def _latex_to_plain(text: str) -> str:
    """Unwrap \\text{...}, turn simple fractions into a/b and drop formatting that never changes the value."""
    text = text.replace("\u2212", "-").replace("{,}", ",").replace("\\ ", " ")
    previous = None
    while previous != text:  # wrappers and fractions may nest
        previous = text
        text = _TEXT_WRAPPER_RE.sub(r"\1", text)
        text = _FRAC_RE.sub(_plain_fraction, text)
    text = _FRAC_SHORT_RE.sub(_plain_fraction, text)
    for noise in _NOISE:
        text = text.replace(noise, "")
    return _THOUSANDS_COMMA_RE.sub("", text)


def _exact_text(value: Fraction) -> str:
    """A computed value written exactly: "5000", "3.25" when the decimal ends, else "7/3"."""
    if value.denominator == 1:
        return str(value.numerator)
    rest, places = value.denominator, 0
    for prime in (2, 5):
        count = 0
        while rest % prime == 0:
            rest, count = rest // prime, count + 1
        places = max(places, count)
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    scaled = abs(value.numerator) * 10**places // value.denominator
    sign = "-" if value < 0 else ""
    return f"{sign}{scaled // 10**places}.{scaled % 10**places:0{places}d}"


def _read_value(match: re.Match[str]) -> list[str]:
    """The value(s) one match of _VALUE_RE stands for; plain numbers keep their digits ("18.00", "3/4")."""
    sign, lead = match["sign"] or "", match["lead"].replace(",", "")
    if match["power_of_ten"] is not None:
        value = Fraction(lead) * Fraction(10) ** int(match["power_of_ten"])
    elif match["power"] is not None:
        try:
            value = Fraction(lead) ** int(match["power"])
        except ZeroDivisionError:  # 0^{-1} has no value
            return []
    elif match["numerator"] is not None:
        numerator, denominator = int(match["numerator"]), int(match["denominator"])
        if not lead.isdigit() or not 0 < numerator < denominator:  # "3 5/4", "2.5 1/2": two values side by side
            return [sign + lead, f"{numerator}/{denominator}"]
        value = int(lead) + Fraction(numerator, denominator)
    else:
        return [sign + lead + (f"/{match['over']}" if match["over"] else "")]
    return [_exact_text(-value if sign else value)]


def _value_matches(plain: str) -> tuple[str, list[re.Match[str]]]:
    """The span rewritten for reading (x², x^{2} -> x^2) and its value matches, detached exponents left out."""
    text = _SUPERSCRIPT_RE.sub(lambda match: "^" + match[0].translate(_FROM_SUPERSCRIPT), plain)
    text = _BRACED_EXPONENT_RE.sub(r"^\1", text)
    return text, [match for match in _VALUE_RE.finditer(text) if match["detached_exponent"] is None]


def read_values(plain: str) -> list[str]:
    """Every value in a plain-text span, in order, each read whole.

    A mixed number ("1 3/4", from 3\\frac{1}{4} too), scientific notation ("5 x 10^3", "5e3") and a power of a
    number ("2^{10}", "10³") are one value each, written exactly ("1.75", "5000", "1024"); plain numbers keep their
    digits ("18.00", "3/4", "-7.50"). Neighbouring numbers are never glued ("3 4" is two values) and the exponent
    of a unit or variable ("49 m^2", "49 m²", "x^2") is not a value.
    """
    _, matches = _value_matches(plain)
    return [value for match in matches for value in _read_value(match)]


def normalize_answer(raw: str) -> str | None:
    """Reduce an extracted answer to a bare value like "1000", "3/4", "3.25" or "18.00"; None when nothing is left.

    A span that is one value becomes that value; one with words in it ("18 dollars", "49 m^2") becomes its last
    value; anything else (symbolic LaTeX, "3 4") is returned as written for math_verify.
    """
    # After an "=" comes the result: "x = 5", "3 \times 4 = 12", "= 7".
    answer = _latex_to_plain(raw).rsplit("=", 1)[-1]
    answer = answer.strip().strip("*").strip().rstrip(".").strip()
    if not answer:
        return None
    reading, matches = _value_matches(answer)
    if len(matches) == 1 and matches[0].span() == (0, len(reading)):
        values = _read_value(matches[0])
        if len(values) == 1:
            return values[0]
    if re.search(r"[a-zA-Z]", _LATEX_COMMAND_RE.sub("", answer)):  # "she has 5 left"
        values = [value for match in matches for value in _read_value(match)]
        if values:
            return values[-1]
    return answer


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
