"""Worker pool: real spawned processes, killed, crashed, timed out, overloaded, parallel."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from icapdlp.server.workers import Overloaded, WorkerPool
from icapdlp.verdict import BlockReason, Blocked
from tests.server import worker_tasks as tasks


def run(coro):
    return asyncio.run(coro)


async def _pool(**kwargs) -> WorkerPool:
    pool = WorkerPool(**{"processes": 1, "task_deadline": 30.0, **kwargs})
    await pool.start()
    return pool


def test_initializer_runs_once_in_every_worker():
    async def scenario():
        pool = await _pool(processes=2, initializer=tasks.initialise, initargs=("model",))
        try:
            results = set()
            for _ in range(6):
                results.add(await pool.run(tasks.initialised))
            return results, pool.pids
        finally:
            await pool.close()

    results, pids = run(scenario())
    assert results <= {f"model:{pid}" for pid in pids} and len(pids) == 2


def test_two_tasks_run_at_the_same_time_in_two_processes(tmp_path):
    async def scenario():
        pool = await _pool(processes=2)
        try:
            return await asyncio.gather(pool.run(tasks.rendezvous, str(tmp_path), "a", "b"),
                                        pool.run(tasks.rendezvous, str(tmp_path), "b", "a"))
        finally:
            await pool.close()

    (pid_a, met_a), (pid_b, met_b) = run(scenario())
    assert met_a and met_b and pid_a != pid_b


def test_a_worker_killed_mid_task_is_worker_crashed_and_replaced(tmp_path):
    marker = tmp_path / "pid"

    async def scenario():
        pool = await _pool()
        try:
            task = asyncio.ensure_future(pool.run(tasks.write_pid_and_sleep, str(marker), 30))
            while not marker.exists() or not marker.read_text():
                await asyncio.sleep(0.01)
            victim = int(marker.read_text())
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(Blocked) as info:
                await task
            after = await pool.run(tasks.pid)
            return victim, info.value.reason, after
        finally:
            await pool.close()

    victim, reason, after = run(scenario())
    assert reason == BlockReason.WORKER_CRASHED and after != victim


def test_a_worker_that_exits_is_worker_crashed_and_later_tasks_succeed():
    async def scenario():
        pool = await _pool()
        try:
            with pytest.raises(Blocked) as info:
                await pool.run(tasks.die)
            return info.value.reason, await pool.run(tasks.sleep_then, 0, "ok")
        finally:
            await pool.close()

    assert run(scenario()) == (BlockReason.WORKER_CRASHED, "ok")


def test_deadline_kills_the_worker_and_blocks():
    async def scenario():
        pool = await _pool(task_deadline=0.5)
        try:
            before = pool.pids
            started = time.monotonic()
            with pytest.raises(Blocked) as info:
                await pool.run(tasks.sleep_then, 30, "late")
            elapsed = time.monotonic() - started
            value = await pool.run(tasks.sleep_then, 0, "next")
            return info.value.reason, elapsed, value, before, pool.pids
        finally:
            await pool.close()

    reason, elapsed, value, before, after = run(scenario())
    assert reason == BlockReason.DEADLINE_EXCEEDED and elapsed < 5
    assert value == "next" and before != after


def test_blocked_and_errors_from_tasks_keep_reason_and_hide_text():
    async def scenario():
        pool = await _pool()
        try:
            with pytest.raises(Blocked) as refused:
                await pool.run(tasks.refuse)
            with pytest.raises(Blocked) as failed:
                await pool.run(tasks.fail)
            return refused.value, failed.value, pool.pids, await pool.run(tasks.pid)
        finally:
            await pool.close()

    refused, failed, pids, pid = run(scenario())
    assert (refused.reason, refused.detail) == (BlockReason.UNPARSEABLE_DICOM, "synthetic")
    assert failed.reason == BlockReason.INTERNAL_ERROR and "ValueError" in failed.detail
    assert "SMITH" not in str(failed) and pids == [pid]  # an exception does not cost the worker


def test_queue_is_bounded_and_depth_is_visible():
    async def scenario():
        pool = await _pool(max_queue=1)
        try:
            busy = asyncio.ensure_future(pool.run(tasks.sleep_then, 1.0, "first"))
            await asyncio.sleep(0.1)
            queued = asyncio.ensure_future(pool.run(tasks.sleep_then, 0, "second"))
            await asyncio.sleep(0.05)
            depth = pool.queue_depth
            with pytest.raises(Overloaded):
                await pool.run(tasks.sleep_then, 0, "third")
            return depth, await busy, await queued, pool.queue_depth
        finally:
            await pool.close()

    assert run(scenario()) == (1, "first", "second", 0)


def test_a_cancelled_caller_does_not_lose_the_worker():
    async def scenario():
        pool = await _pool()
        try:
            task = asyncio.ensure_future(pool.run(tasks.sleep_then, 0.3, "x"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await asyncio.wait_for(pool.run(tasks.sleep_then, 0, "after"), 10)
        finally:
            await pool.close()

    assert run(scenario()) == "after"


def test_failing_initializer_fails_start():
    async def scenario():
        pool = WorkerPool(1, initializer=tasks.fail)
        await pool.start()

    with pytest.raises(RuntimeError, match="ValueError"):
        run(scenario())
