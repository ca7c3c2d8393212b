"""Read and write Hermes-style `<tool_call>{"name": ..., "arguments": ...}</tool_call>` text (Qwen-style models)."""

import ast
import json
import re
import warnings
from typing import Any, NamedTuple

from delegate.models.base import ToolCall
from delegate.templates import fill

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
# A block ends at its closing tag, at the next opening tag (an unclosed block), or at the end (cut-off generation).
TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|(?=<tool_call>)|$)", re.DOTALL)
# The name of a call whose block names no tool that can be read; the router answers it with `malformed_call_detail`.
MALFORMED_CALL_NAME = "<malformed tool call>"

CLOSING_TAG = "</tool_call>"
# A Markdown code fence around a payload, which lenient decoding trims.
_FENCE = re.compile(r"^```[\w-]*\s*|\s*```$")
# The tool a block meant, read from text that is not valid JSON: the first quoted "name" value.
_NAME_IN_TEXT = re.compile(r"""["']name["']\s*:\s*["']([^"'\\\n]{1,200})["']""")
_CLOSERS = {"{": "}", "[": "]"}


class HermesReply(NamedTuple):
    """A reply split into what it says (`content`) and the calls it makes; unpacks as (content, tool_calls)."""

    content: str
    tool_calls: tuple[ToolCall, ...]

    @property
    def found(self) -> bool:
        """Whether the reply had a `<tool_call>` outside its reasoning (every such block is a call, broken or not)."""
        return bool(self.tool_calls)


class MalformedCall(ValueError):
    """A `<tool_call>` block that is not a call; `detail` says why, in words the model can act on."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def strip_reasoning(text: str) -> str:
    """The text without its reasoning: `<think>…</think>` spans, an unclosed `<think>` (to the end), and everything
    before a `</think>` that has no opening tag (Qwen3's and DeepSeek-R1's templates put `<think>` in the prompt)."""
    head, closed, tail = text.partition(THINK_CLOSE)
    if closed and THINK_OPEN not in head:
        text = tail
    kept = []
    while text:
        before, opened, after = text.partition(THINK_OPEN)
        kept.append(before)
        text = after.partition(THINK_CLOSE)[2] if opened else ""
    return "".join(kept)


def _without_cut_closing_tag(text: str) -> str:
    """`text` without a closing tag that generation cut off mid-way (`</tool_ca`) at its end."""
    cut = next((n for n in range(len(CLOSING_TAG) - 1, 0, -1) if text.endswith(CLOSING_TAG[:n])), 0)
    return text[: len(text) - cut]


def _trimmed(text: str) -> str:
    """The payload without a cut-off closing tag, a code fence, or anything before its first bracket."""
    text = _FENCE.sub("", _without_cut_closing_tag(text.strip()).rstrip()).strip()
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return text[min(starts) :] if starts else text


def _closed(text: str) -> str:
    """`text` with the brackets it left open closed, when it ends outside a string (a reply cut before its last `}`)."""
    stack, quote, escaped = [], None, False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif stack and char == stack[-1]:
            stack.pop()
    return text if quote else text + "".join(reversed(stack))


def _python_literal(text: str) -> Any:
    """`text` read as a Python literal (single quotes, True/None), never evaluated; prose after its last closing
    bracket is ignored, but not another value begun there (a call cut short is not dropped)."""
    end = max(text.rfind("}"), text.rfind("]")) + 1
    if end and not any(bracket in text[end:] for bracket in _CLOSERS):
        text = text[:end]
    with warnings.catch_warnings():
        # "\s" and other LaTeX backslashes are invalid escapes that Python keeps as written, with a warning.
        warnings.simplefilter("ignore")
        return ast.literal_eval(text)


def _json_values(text: str) -> Any:
    """The JSON value `text` begins with, text after it ignored; objects that follow it, separated by whitespace or
    commas only (several calls written in one block), make a list with it. Raises `json.JSONDecodeError`, also for
    a following object that does not decode (rather than dropping a call)."""
    decoder = json.JSONDecoder()
    value, end = decoder.raw_decode(text)
    values, rest = [value], text[end:].lstrip(" \t\r\n,")
    while isinstance(value, dict) and rest.startswith("{"):
        value, end = decoder.raw_decode(rest)
        values.append(value)
        rest = rest[end:].lstrip(" \t\r\n,")
    return values[0] if len(values) == 1 else values


def decode_payload(text: str) -> Any:
    """The value `text` holds: strict JSON first; then, on the text trimmed of code fences and a cut-off closing tag,
    JSON values (see `_json_values`), then a Python literal, each also with left-open brackets closed.
    Raises the strict `json.JSONDecodeError` when no reading works."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        strict_error = error
    trimmed = _trimmed(text)
    for candidate in dict.fromkeys((trimmed, _closed(trimmed))):
        try:
            return _json_values(candidate)
        except json.JSONDecodeError:
            pass
        try:
            return _python_literal(candidate)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
    raise strict_error


def _json_kind(value: Any) -> str:
    """What a decoded value is, in JSON's words (a Python literal's other types by their own name)."""
    kinds = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }
    return kinds.get(type(value), type(value).__name__)


def _arguments_text(arguments: Any) -> str:
    """Arguments as JSON text: an object is serialized; a string is decoded leniently and re-serialized when it holds
    an object, else kept as written so that the caller reports it; anything else is serialized as it is."""
    if isinstance(arguments, str):
        try:
            decoded = decode_payload(arguments)
        except ValueError:
            return arguments
        if not isinstance(decoded, dict):
            return arguments
        arguments = decoded
    try:
        return json.dumps(arguments, ensure_ascii=False)
    except (TypeError, ValueError):  # a Python literal can hold sets, bytes or complex numbers
        raise MalformedCall("arguments that JSON cannot represent") from None


def _call(payload: Any) -> tuple[str, str]:
    """(name, arguments as JSON text) of one decoded call object; raises MalformedCall."""
    if not isinstance(payload, dict):
        raise MalformedCall(f'a JSON {_json_kind(payload)}, not an object with a "name"')
    if "name" not in payload:
        raise MalformedCall('no "name"')
    if not isinstance(payload["name"], str):
        raise MalformedCall(f'"name" is a JSON {_json_kind(payload["name"])}, not a string')
    # Llama-style payloads call the arguments "parameters".
    arguments = payload.get("arguments", payload.get("parameters", {}))
    return payload["name"], _arguments_text(arguments)


def read_block(block: str) -> list[tuple[str, str]]:
    """The (name, arguments JSON text) calls in one block's text: one object, or an array of them.
    Raises MalformedCall for a block that is not one; `json.JSONDecodeError` (also a ValueError) when it is not
    decodable at all."""
    if not block.strip():
        raise MalformedCall("empty")
    payload = decode_payload(block)
    if not (isinstance(payload, list) and payload):
        return [_call(payload)]
    calls = []
    for index, item in enumerate(payload):
        try:
            calls.append(_call(item))
        except MalformedCall as error:
            raise MalformedCall(f"item {index} of the array: {error.detail}") from None
    return calls


def malformed_call_detail(block: str) -> str:
    """Why `block` (the text of a `<tool_call>` block) is not a call, for the model to read; '' if it is one."""
    try:
        read_block(block)
    except MalformedCall as error:
        return error.detail
    except json.JSONDecodeError as error:
        return f"not valid JSON: {error.msg}"
    return ""


def _block_calls(block: str) -> list[tuple[str, str]]:
    """The calls of one block; a broken one is still a call, for the caller to answer with what went wrong:
    named after the tool it names (arguments: the block, so its JSON error is reported) or MALFORMED_CALL_NAME."""
    try:
        return read_block(block)
    except json.JSONDecodeError:
        named = _NAME_IN_TEXT.search(block)
        return [(named.group(1) if named else MALFORMED_CALL_NAME, block)]
    except MalformedCall:
        return [(MALFORMED_CALL_NAME, block)]


def parse_tool_calls(text: str, id_prefix: str = "call") -> HermesReply:
    """Split a reply into its content and its calls (ids `{id_prefix}_0`, `_1`, ... in order).

    Reasoning is not a reply: `<think>` spans are removed first (see `strip_reasoning`), so a call drafted while
    thinking never runs and the content holds no thinking. Every `<tool_call>` block left becomes at least one call
    (arguments as JSON text), see `read_block` and `decode_payload`. A text with neither comes back unchanged;
    otherwise the content is what remains, stripped.
    """
    answer = strip_reasoning(text)
    pairs = [pair for match in TOOL_CALL_BLOCK.finditer(answer) for pair in _block_calls(match.group(1))]
    calls = tuple(ToolCall(id=f"{id_prefix}_{i}", name=name, arguments=args) for i, (name, args) in enumerate(pairs))
    if not calls and answer == text:
        return HermesReply(text, ())
    return HermesReply(TOOL_CALL_BLOCK.sub("", answer).strip(), calls)


def _arguments_object(arguments: str):
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def inline_tools(messages: list[dict], tools: list[dict] | None, tool_prompt: str) -> list[dict]:
    """For chat templates that ignore tools: describe them in the system message and write calls and results as Hermes text.

    `tool_prompt` is filled in: `{tools}` with the tools' JSON, `{tool_name}` and `{tool_argument}` with the first
    tool's name and its first required argument (for an example call)."""
    inlined: list[dict] = []
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            blocks = "".join(
                "\n<tool_call>\n"
                + json.dumps(
                    {"name": c["function"]["name"], "arguments": _arguments_object(c["function"]["arguments"])}
                )
                + "\n</tool_call>"
                for c in message["tool_calls"]
            )
            inlined.append({"role": "assistant", "content": ((message.get("content") or "") + blocks).strip()})
        elif message["role"] == "tool":
            # Qwen2.5's own template shows tool results to the model this way.
            inlined.append({"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"})
        else:
            inlined.append(message)
    if tools:
        # The example call names the strategy's own tool and argument, never one written into the model's config.
        first = tools[0].get("function", {})
        argument = next(iter(first.get("parameters", {}).get("required", [])), "")
        description = fill(
            tool_prompt,
            tools="\n".join(json.dumps(t) for t in tools),
            tool_name=first.get("name", ""),
            tool_argument=argument,
        )
        if inlined and inlined[0]["role"] == "system":
            inlined[0] = {"role": "system", "content": f"{inlined[0]['content']}\n\n{description}"}
        else:
            inlined.insert(0, {"role": "system", "content": description})
    return inlined
