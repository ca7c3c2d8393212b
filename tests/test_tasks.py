"""gather_or_cancel: results in order; a failure cancels the others, and they have stopped before it is raised."""

import asyncio

import pytest

from delegate.tasks import gather_or_cancel


def test_results_come_back_in_the_order_given():
    async def after(delay_s: float, value: int) -> int:
        await asyncio.sleep(delay_s)
        return value

    assert asyncio.run(gather_or_cancel([after(0.03, 1), after(0.0, 2), after(0.01, 3)])) == [1, 2, 3]


def test_a_failure_cancels_the_rest_before_it_is_raised():
    stopped: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.append("slow")

    async def failing() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("bad call")

    async def run() -> None:
        with pytest.raises(ValueError, match="bad call"):
            await gather_or_cancel([slow(), failing()])
        # Already stopped when the error arrived, not merely asked to.
        assert stopped == ["slow"]

    asyncio.run(run())
