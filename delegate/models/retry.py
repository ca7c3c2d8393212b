"""Retries around each call to an OpenAI-compatible server: backoff that honours the server's Retry-After, one
back-off gate per endpoint, and a circuit breaker for failures no retry can fix."""

import asyncio
import email.utils
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import timezone
from typing import TypeVar

import openai
import tenacity

from delegate.errors import EndpointFailing

# Worth asking again: request timeout, conflict, rate limit, and every server error (5xx).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# The endpoint says it is overloaded: every call to it waits at its gate (see OverloadGate).
OVERLOAD_STATUSES = frozenset({429, 503})
# A request no retry fixes (refused, bad key, no access, no such model): counted by the circuit breaker.
BREAKER_STATUSES = frozenset({400, 401, 403, 404})
# Identical breaker failures (same status) in a row, with no success between, that open the breaker.
BREAKER_THRESHOLD = 3
# Jitter, so calls that failed together don't retry together: a wait is lengthened by up to this share of itself
# (of the first backoff, when the server asked for less).
JITTER_SHARE = 0.5

T = TypeVar("T")


def server_delay_s(error: BaseException) -> float | None:
    """The wait (seconds) a failed response asked for: OpenAI's `retry-after-ms`, else `Retry-After` as seconds or an
    HTTP date; None when it asked for none or sent something unreadable. Never negative."""
    if not isinstance(error, openai.APIStatusError):
        return None
    headers = error.response.headers
    try:
        return max(float(headers["retry-after-ms"]) / 1000, 0.0)
    except (KeyError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if date.tzinfo is None:  # HTTP dates are GMT
        date = date.replace(tzinfo=timezone.utc)
    return max(date.timestamp() - time.time(), 0.0)


def is_transient(error: BaseException) -> bool:
    """A failure the same request may not meet again: HTTP 408, 409, 429 or 5xx, a connection error or a timeout."""
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUSES or error.status_code >= 500
    return isinstance(error, openai.APIConnectionError)  # APITimeoutError is one


class OverloadGate:
    """The moment before which no request may go to one endpoint, pushed back each time the endpoint signals
    overload; waiters leave spread over a jitter window, not all at once."""

    def __init__(self) -> None:
        self._open_at_s = 0.0  # time.monotonic()
        self._jitter_s = 0.0

    def close_for(self, delay_s: float, jitter_s: float) -> None:
        """No request leaves before `delay_s` from now (nor before an earlier closing's end)."""
        self._open_at_s = max(self._open_at_s, time.monotonic() + delay_s)
        self._jitter_s = jitter_s

    async def wait(self) -> None:
        """Return once the gate is open (at once, if it is)."""
        while (left_s := self._open_at_s - time.monotonic()) > 0:
            await asyncio.sleep(left_s + random.uniform(0, self._jitter_s))


class CircuitBreaker:
    """Opens after BREAKER_THRESHOLD identical failures in a row (same HTTP status, one of BREAKER_STATUSES) with no
    success between; once open, every call fails at once with EndpointFailing. Other failures change nothing.

    `line(status)`, given by each caller, is the one line EndpointFailing carries: the caller's setting to fix."""

    def __init__(self) -> None:
        self._status: int | None = None
        self._count = 0
        self._open = False

    def check(self, line: Callable[[int], str]) -> None:
        """EndpointFailing if the breaker is open."""
        if self._open:
            raise EndpointFailing(line(self._status))

    def succeeded(self) -> None:
        self._status, self._count = None, 0

    def failed(self, status: int, line: Callable[[int], str]) -> None:
        """Count a failure with HTTP `status`; at the threshold the breaker opens and EndpointFailing is raised in place
        of the failure (its body is dropped: it may echo a secret)."""
        if status not in BREAKER_STATUSES:
            return
        self._count = self._count + 1 if status == self._status else 1
        self._status = status
        if self._count >= BREAKER_THRESHOLD:
            self._open = True
            raise EndpointFailing(line(status)) from None


# Per event loop: shared by every call on it (a job runs on one: both roles, every concurrent call); a new loop (the
# next job in the process) starts with open gates and closed breakers.
_gates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_breakers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shared(registry: weakref.WeakKeyDictionary, key: object, make: Callable[[], T]) -> T:
    """The running event loop's object for `key` in `registry`, made on first use."""
    on_this_loop = registry.setdefault(asyncio.get_running_loop(), {})
    if key not in on_this_loop:
        on_this_loop[key] = make()
    return on_this_loop[key]


class RetryingCaller:
    """Sends a model's requests to one endpoint: each attempt waits at the endpoint's gate and goes only while its
    breaker is closed; transient failures are retried with the wait the server asked for, else exponential backoff
    (`backoff_s`, doubling, at most `max_backoff_s`), plus jitter.

    The gate is shared by every call to `base_url`, the breaker by every call to `model` there, on the same event loop
    (a job's). `failing_line(status)` is the breaker's one line for a status: it names the setting to fix.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        max_retries: int,
        backoff_s: float,
        max_backoff_s: float,
        failing_line: Callable[[int], str],
        also_transient: tuple[type[Exception], ...] = (),
    ):
        self._base_url, self._model = base_url, model
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._backoff = tenacity.wait_exponential(multiplier=backoff_s, max=max_backoff_s)
        self._failing_line = failing_line
        self._also_transient = also_transient

    def delay_s(self, error: BaseException, state: tenacity.RetryCallState) -> float:
        """The wait before the next attempt, jitter aside: what the server asked for, else the backoff; at most
        `max_backoff_s` either way."""
        asked_s = server_delay_s(error)
        return min(asked_s, self._max_backoff_s) if asked_s is not None else self._backoff(state)

    def jitter_s(self, delay_s: float) -> float:
        """The width of the jitter added to a wait of `delay_s`."""
        return JITTER_SHARE * max(delay_s, self._backoff_s)

    def _wait_s(self, state: tenacity.RetryCallState) -> float:
        delay_s = self.delay_s(state.outcome.exception(), state)
        return delay_s + random.uniform(0, self.jitter_s(delay_s))

    async def __call__(self, send: Callable[[], Awaitable[T]], may_retry: Callable[[], bool] = lambda: True) -> T:
        """`send()`'s result, retrying it up to `max_retries` times while its failure is transient and `may_retry()`
        (a stream that has passed text on is not asked again). The last failure is raised as it came, except the one
        that opens the breaker, raised as EndpointFailing."""
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self._max_retries + 1),
            wait=self._wait_s,
            retry=tenacity.retry_if_exception(
                lambda error: (is_transient(error) or isinstance(error, self._also_transient)) and may_retry()
            ),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await self._attempt(send, attempt.retry_state)
        return result

    async def _attempt(self, send: Callable[[], Awaitable[T]], state: tenacity.RetryCallState) -> T:
        gate = _shared(_gates, self._base_url, OverloadGate)
        breaker = _shared(_breakers, (self._base_url, self._model), CircuitBreaker)
        await gate.wait()
        breaker.check(self._failing_line)
        try:
            result = await send()
        except openai.APIStatusError as error:
            if error.status_code in OVERLOAD_STATUSES:
                delay_s = self.delay_s(error, state)
                gate.close_for(delay_s, self.jitter_s(delay_s))
            breaker.failed(error.status_code, self._failing_line)
            raise
        breaker.succeeded()
        return result
