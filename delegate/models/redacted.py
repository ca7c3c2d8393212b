"""The boundary every model call's text crosses: replies and failures leave a backend with their secrets removed."""

from dataclasses import replace

from delegate.errors import ConfigError, ModelCallError
from delegate.models.base import ChatModel, ChatRequest, ChatResponse, TextSink, ToolCall
from delegate.redaction import RedactingSink, redact


class RedactedModel:
    """A backend whose replies and failures are redacted (`delegate.redaction.redact`): the text (streamed too), the
    finish reason and each tool call's id, name and arguments. A ConfigError (our own words, e.g. the circuit
    breaker's EndpointFailing) passes through, remade with its text redacted if it quoted a secret; any other failure
    becomes a ModelCallError with the failure's class, HTTP status and redacted message, raised without the original
    exception, which may hold the server's body and the request's headers.
    Cancellation and Ctrl-C pass through untouched. It sits right on the backend, below the response cache, so that
    nothing a secret was in is cached."""

    def __init__(self, model: ChatModel, role: str):
        self._model = model
        self.role = role

    async def chat(self, request: ChatRequest, on_text: TextSink | None = None) -> ChatResponse:
        sink = RedactingSink(on_text) if on_text is not None else None
        try:
            response = await self._model.chat(request, sink)
        except ConfigError as error:
            # Our own words, but they may quote a setting (a base_url with credentials).
            if redact(str(error)) == str(error):
                raise
            failure = type(error)(redact(str(error)))
        except Exception as error:  # noqa: BLE001 - every failure leaves the model layer as a ModelCallError
            failure = model_call_error(self.role, error)
        else:
            return redacted_response(response)
        finally:
            if sink is not None:
                sink.flush()
        # Raised outside the `except` block, so the original is neither its cause nor its context.
        raise failure

    async def aclose(self) -> None:
        await self._model.aclose()


def model_call_error(role: str, error: Exception) -> ModelCallError:
    """`error` as a ModelCallError of `role`: kind = its class name, status_code = its HTTP status (the SDK's
    `status_code`, else its response's; None without one), detail = its message, redacted. A ModelCallError (a backend
    that raises its own) keeps its kind and status, and its detail is redacted again."""
    if isinstance(error, ModelCallError):
        return ModelCallError(role, error.kind, error.status_code, redact(error.detail))
    status_code = getattr(error, "status_code", None)
    if status_code is None:
        status_code = getattr(getattr(error, "response", None), "status_code", None)
    return ModelCallError(
        role, type(error).__name__, status_code if isinstance(status_code, int) else None, redact(str(error))
    )


def redacted_response(response: ChatResponse) -> ChatResponse:
    """The reply with its text, finish reason and tool calls (ids, names, arguments) redacted."""
    return replace(
        response,
        text=redact(response.text),
        finish_reason=redact(response.finish_reason) if response.finish_reason else response.finish_reason,
        tool_calls=tuple(
            ToolCall(
                id=redact(call.id),
                name=redact(call.name),
                arguments=redact(call.arguments),
                original_id=redact(call.original_id) if call.original_id else call.original_id,
            )
            for call in response.tool_calls
        ),
    )
