"""Scripted OpenAI-compatible HTTP server on loopback, for driving the real ``openai`` client in tests and benchmarks.

`python -m delegate.testing.scripted_server --content '\\boxed{42}'` serves one constant reply until killed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_STREAM_PIECE = 4  # characters per streamed content/arguments delta
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


@dataclass
class Reply:
    """One scripted answer; for non-200 ``status``, ``content`` (if any) becomes the error message."""

    content: str | None = None
    # Each {"name": str, "arguments": str}; "arguments" is sent verbatim so tests can make it malformed.
    tool_calls: list[dict] | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    delay_s: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str | None = None
    # What real servers send, verbatim. `raw_message` is the choice's whole `message` (not streamed; `content` and
    # `tool_calls` are then ignored).
    raw_message: dict | None = None
    # The whole body, sent as it is (not streamed; an error body too, with `status`); wins over every field above.
    raw_body: Any = None
    # The whole body as text, not JSON-encoded (an HTML page, truncated JSON), labelled `content_type`; never
    # streamed; wins over every other field.
    raw_text: str | None = None
    content_type: str = "application/json"
    # The request's headers (Authorization included) appended to `content`, or to the error message: a server or
    # proxy that echoes what it was sent.
    echo_headers: bool = False
    # "counts": built from the token counts and the details below; a dict: sent as it is; None: `"usage": null`;
    # "omit": no usage at all (in a stream, no usage chunk even when `include_usage` is asked for).
    usage: dict | str | None = "counts"
    prompt_tokens_details: dict | None = None
    completion_tokens_details: dict | None = None
    # Streamed: these chunks (each over the completion's id/created/model/object) instead of the ones built from
    # `content` and `tool_calls`; the usage chunk and `[DONE]` still follow.
    raw_chunks: list[dict] | None = None


Responder = Callable[[dict], Reply]


class ScriptedServer:
    """Answers chat completions from a reply queue, then a responder, then ``default``; with `fail_every`, every nth
    request gets a fault instead."""

    def __init__(self, replies: Iterable[Reply] | Responder | None = None, default: Reply | None = None):
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._responder: Responder | None = None
        if callable(replies):
            self._responder = replies
        elif replies is not None:
            self._queue.extend(replies)
        self.default = default
        self.requests: list[dict] = []
        # HTTP headers of each request (names lower-cased), in the same order, so tests can check what a client sends besides the body.
        self.headers: list[dict[str, str]] = []
        # When each request arrived (time.monotonic()), in the same order.
        self.arrivals_s: list[float] = []
        self._fault: tuple[int, Reply] | None = None
        self._ids = itertools.count()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, port: int = 0) -> ScriptedServer:
        # Idempotent so that `with serve(...) as server:` does not bind a second socket.
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.scripted = self
        # A short poll interval keeps stop() (and so every test teardown) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="scripted-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def set_responder(self, responder: Responder) -> None:
        with self._lock:
            self._responder = responder

    def fail_every(self, n: int, reply: Reply) -> None:
        """Answer every nth request (the nth, 2nth, ... counted from the first) with `reply`, e.g. a 429 with
        Retry-After; the script (queue, responder, default) answers the others and is not consumed by the faults."""
        with self._lock:
            self._fault = (n, reply)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _reply_for(self, body: dict, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.arrivals_s.append(time.monotonic())
            if self._fault is not None and len(self.requests) % self._fault[0] == 0:
                return self._fault[1]
            if self._queue:
                return self._queue.popleft()
            responder = self._responder
        # Called outside the lock so a slow responder does not serialize concurrent requests.
        if responder is not None:
            return responder(body)
        return self.default or Reply(content="script exhausted", status=500)


# The usage a reply leaves out entirely.
_OMIT = "omit"


def _usage(reply: Reply) -> Any:
    """The `usage` field a reply sends (or _OMIT): see Reply.usage."""
    if reply.usage != "counts":
        return reply.usage
    usage: dict[str, Any] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    if reply.prompt_tokens_details is not None:
        usage["prompt_tokens_details"] = reply.prompt_tokens_details
    if reply.completion_tokens_details is not None:
        usage["completion_tokens_details"] = reply.completion_tokens_details
    return usage


def serve(replies: Iterable[Reply] | Responder | None = None, default: Reply | None = None) -> ScriptedServer:
    return ScriptedServer(replies, default).start()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when benchmarks open dozens at once.
    request_queue_size = 256
    scripted: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response (cancelled benchmark calls) are expected, not failures.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    # Keep-alive for plain replies (they carry Content-Length), as real servers do: clients reuse connections.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.split("?")[0].rstrip("/") == "/v1/models":
            model = {"id": "scripted", "object": "model", "created": 0, "owned_by": "scripted"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_error(404, f"no route for GET {self.path}")

    def do_POST(self) -> None:
        # Always drain the body: closing with unread input makes the kernel reset the connection.
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._send_error(404, f"no route for POST {self.path}")
            return
        try:
            body = json.loads(raw)
        except ValueError as e:
            self._send_error(400, f"invalid JSON body: {e}")
            return
        scripted = self.server.scripted
        try:
            reply = scripted._reply_for(body, {k.lower(): v for k, v in self.headers.items()})
        except Exception as e:  # surface responder bugs to the client instead of hanging up
            self._send_error(500, f"responder failed: {e!r}")
            return
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.echo_headers:
            echoed = "; ".join(f"{name}: {value}" for name, value in self.headers.items())
            reply = replace(reply, content=f"{reply.content or ''} (request headers: {echoed})")
        if reply.raw_text is not None:
            self._send_bytes(reply.status, reply.raw_text.encode(), reply.content_type, reply.headers)
            return
        if reply.status != 200 and reply.raw_body is not None:
            self._send_json(reply.status, reply.raw_body, reply.headers)
            return
        if reply.status != 200:
            self._send_error(
                reply.status, reply.content or self.responses.get(reply.status, ("error",))[0], reply.headers
            )
            return
        completion_id = f"chatcmpl-{scripted._next_id()}"
        tool_calls = [
            {
                "id": call.get("id") or f"call_{scripted._next_id()}",
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            for call in reply.tool_calls or []
        ]
        head = {"id": completion_id, "created": int(time.time()), "model": body.get("model", "scripted")}
        finish = reply.finish_reason or ("tool_calls" if tool_calls else "stop")
        usage = _usage(reply)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(head, reply, tool_calls, finish, usage if include_usage else _OMIT)
            return
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        if reply.raw_message is not None:
            message = reply.raw_message
        completion = {
            **head,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        if usage != _OMIT:
            completion["usage"] = usage
        self._send_json(200, completion if reply.raw_body is None else reply.raw_body, reply.headers)

    def _stream(self, head: dict, reply: Reply, tool_calls: list[dict], finish: str, usage: Any) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        # No Content-Length: closing the connection marks the end of the stream.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()

        def event(delta: dict, finish_reason: str | None = None) -> None:
            chunk = {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            self._write_event(chunk)

        if reply.raw_chunks is not None:
            for chunk in reply.raw_chunks:
                self._write_event({**head, "object": "chat.completion.chunk", **chunk})
        else:
            event({"role": "assistant", "content": ""})
            content = reply.content or ""
            for i in range(0, len(content), _STREAM_PIECE):
                event({"content": content[i : i + _STREAM_PIECE]})
            for index, call in enumerate(tool_calls):
                fn = call["function"]
                event(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": fn["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                args = fn["arguments"]
                for i in range(0, len(args), _STREAM_PIECE):
                    event({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + _STREAM_PIECE]}}]})
            event({}, finish)
        if usage != _OMIT:
            self._write_event({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _write_event(self, payload: dict) -> None:
        self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
        self.wfile.flush()

    def _send_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self._send_json(status, {"error": {"message": message, "type": kind, "code": None}}, headers)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a constant chat-completions reply until killed.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--content", default="\\boxed{42}")
    args = parser.parse_args(argv)
    server = ScriptedServer(default=Reply(content=args.content)).start(args.port)
    print(f"serving on {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
