"""The worker memory cap (issue 12, item 10b): real spawned workers under RLIMIT_AS.

A task that allocates past its worker's cap is blocked with limit-exceeded
(never worker-crashed), that worker is replaced, a task running at the same
time in another worker never notices, and no worker's resident memory ever
passes the cap.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from icapdlp.config.server_options import MIN_WORKER_MEMORY, WorkerOptions
from icapdlp.server.worker_memory import host_memory_bytes, memory_cap
from icapdlp.server.workers import WorkerPool
from icapdlp.verdict import BlockReason, Blocked
from tests.server import worker_tasks as tasks

CAP = 512 * 1024 * 1024
OVER_CAP = 2 * CAP


def run(coro):
    return asyncio.run(coro)


def hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def _pool(processes: int = 1) -> WorkerPool:
    pool = WorkerPool(processes, task_deadline=60.0, memory_limit=CAP)
    await pool.start()
    return pool


def test_each_worker_runs_under_the_configured_address_space_cap():
    async def scenario():
        pool = await _pool()
        try:
            return await pool.run(tasks.address_space_limit), await pool.run(tasks.allocate, 64 * 1024 * 1024)
        finally:
            await pool.close()

    limit, allocated = run(scenario())
    assert limit == CAP
    assert allocated == 64 * 1024 * 1024  # below the cap, work is unaffected


@pytest.mark.parametrize("task", [tasks.allocate, tasks.allocate_as_pipeline_does])
def test_a_task_past_the_cap_is_limit_exceeded_and_its_worker_replaced(task):
    async def scenario():
        pool = await _pool()
        try:
            before = await pool.run(tasks.pid)
            with pytest.raises(Blocked) as info:
                await pool.run(task, OVER_CAP)
            after = await pool.run(tasks.pid)  # waits for the replacement, never fails
            return before, info.value, after, await pool.run(tasks.address_space_limit)
        finally:
            await pool.close()

    before, blocked, after, limit = run(scenario())
    assert blocked.reason is BlockReason.LIMIT_EXCEEDED
    assert after != before and limit == CAP  # a new worker, capped like the first


def test_other_tasks_never_notice_and_no_worker_passes_its_cap(tmp_path):
    async def scenario():
        pool = await _pool(processes=2)
        try:
            # both run at once: one meets the other, then one blows its cap
            neighbour = asyncio.ensure_future(pool.run(tasks.rendezvous, str(tmp_path), "a", "b"))
            bomb = asyncio.ensure_future(pool.run(tasks.rendezvous, str(tmp_path), "b", "a"))
            (_, met_a), (_, met_b) = await asyncio.gather(neighbour, bomb)
            outcomes = await asyncio.gather(pool.run(tasks.allocate, OVER_CAP),
                                            pool.run(tasks.sleep_then, 0.5, "fine"), return_exceptions=True)
            peaks = [hwm_kb(pid) for pid in pool.pids]
            return met_a and met_b, outcomes, peaks
        finally:
            await pool.close()

    met, outcomes, peaks = run(scenario())
    assert met
    assert isinstance(outcomes[0], Blocked) and outcomes[0].reason is BlockReason.LIMIT_EXCEEDED
    assert outcomes[1] == "fine"
    assert peaks and all(peak * 1024 < CAP for peak in peaks)


def test_the_automatic_cap_shares_three_quarters_of_the_host_between_all_workers():
    assert memory_cap(3 * 1024**3, 4) == 3 * 1024**3
    assert memory_cap(0, 2) == int(host_memory_bytes() * 0.75) // 2
    assert memory_cap(0, 10_000) == MIN_WORKER_MEMORY  # never below what a worker needs to start
    pool = WorkerPool.from_options(WorkerOptions(processes=4), processes=1)  # an acceptor's share of 4
    assert pool.memory_limit == int(host_memory_bytes() * 0.75) // 4
    with pytest.raises(ValueError):
        WorkerOptions(max_memory_bytes=1024)


def test_host_memory_is_the_physical_memory_or_less():
    assert 0 < host_memory_bytes() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_workers_run_one_blas_thread_so_threads_do_not_eat_the_cap():
    async def scenario():
        pool = await _pool()
        try:
            return await pool.run(tasks.thread_count)
        finally:
            await pool.close()

    assert run(scenario()) == 1


def _tree(base: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_systemd_memorymax_or_a_container_limit_is_the_hosts_memory(tmp_path):
    from icapdlp.server.worker_memory import _cgroup_memory_limits

    # cgroup v2: icapdlp.service under system.slice with MemoryMax=4G; the slice itself unlimited
    _tree(tmp_path, {"v2/cgroup": "0::/system.slice/icapdlp.service\n",
                     "v2/sys/system.slice/icapdlp.service/memory.max": "4294967296\n",
                     "v2/sys/system.slice/memory.max": "max\n"})
    assert _cgroup_memory_limits(str(tmp_path / "v2/cgroup"), str(tmp_path / "v2/sys")) == [4294967296]
    # cgroup v1 (hybrid): the memory controller's own hierarchy; 3 GiB on the container's group
    _tree(tmp_path, {"v1/cgroup": "9:name=systemd:/\n4:memory:/docker/abc\n0::/\n",
                     "v1/sys/memory/docker/abc/memory.limit_in_bytes": "3221225472\n",
                     "v1/sys/memory/memory.limit_in_bytes": "9223372036854771712\n"})
    assert min(_cgroup_memory_limits(str(tmp_path / "v1/cgroup"), str(tmp_path / "v1/sys"))) == 3221225472
    assert _cgroup_memory_limits(str(tmp_path / "missing"), str(tmp_path)) == []
