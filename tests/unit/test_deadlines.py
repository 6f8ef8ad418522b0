"""Time limits on the shared timer behave as asyncio.timeout does."""

from __future__ import annotations

import asyncio

import pytest

from ivr.deadlines import within


async def test_a_body_over_its_limit_raises_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        async with within(0.05):
            await asyncio.sleep(10)


async def test_a_body_within_its_limit_finishes_and_is_not_cancelled_later() -> None:
    async with within(0.05):
        await asyncio.sleep(0)

    await asyncio.sleep(0.2)  # well past the limit: still running


async def test_a_cancellation_from_elsewhere_passes_through_as_cancelled_error() -> None:
    async def waits() -> None:
        async with within(10):
            await asyncio.sleep(10)

    task = asyncio.create_task(waits())
    await asyncio.sleep(0)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_inner_limit_that_expires_leaves_the_outer_one_running() -> None:
    async with within(10):
        with pytest.raises(TimeoutError):
            async with within(0.05):
                await asyncio.sleep(10)
        await asyncio.sleep(0)

    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_when_both_expire_the_outer_limit_raises() -> None:
    inner_saw: list[type[BaseException]] = []

    with pytest.raises(TimeoutError):
        async with within(0.05):
            try:
                async with within(0.05):
                    await asyncio.sleep(10)
            except BaseException as exc:
                inner_saw.append(type(exc))
                raise

    assert inner_saw in ([asyncio.CancelledError], [TimeoutError])


async def test_limits_of_many_tasks_expire_each_on_its_own() -> None:
    async def one(sleep_s: float) -> str:
        try:
            async with within(0.1):
                await asyncio.sleep(sleep_s)
        except TimeoutError:
            return "timed out"
        return "done"

    outcomes = await asyncio.gather(*(one(0 if i % 2 else 10) for i in range(100)))

    assert outcomes == ["timed out", "done"] * 50


async def test_a_body_that_swallows_the_cancellation_leaves_no_cancel_pending() -> None:
    async with within(0.05):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass

    await asyncio.sleep(0)  # not cancelled: the limit took its cancellation back
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
