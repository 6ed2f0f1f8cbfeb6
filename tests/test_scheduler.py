"""The operator's one scheduler: one tenant's many slow rechecks cannot starve another tenant's wake-up.

Driven with the scheduler's own clock and its `dispatch`/`finished` steps (what its background task does),
so the order is exact and no test waits on wall-clock time.
"""

from __future__ import annotations

import asyncio

import pytest

from devops_operator.controllers.wakeups import FairQueue, Item, Wakeups, WorkTimeout, waiting_delay

KIND = "InfraDeployment"


def scheduler(now: list[float], *, workers: int, per_namespace: int) -> Wakeups:
    wakeups = Wakeups(clock=lambda: now[0], workers=workers, per_namespace=per_namespace)
    wakeups.register(KIND, lambda namespace, name: None)
    return wakeups


def run_all(wakeups: Wakeups, now: list[float], steps: int = 1000) -> list[tuple[str, str]]:
    """Start and finish due work one batch at a time, as the workers would; the order things started in."""
    order: list[tuple[str, str]] = []
    for _ in range(steps):
        started = wakeups.dispatch()
        if not started:
            break
        for item in started:
            order.append((item.key[1], item.key[2]))
            now[0] += 1.0  # each recheck takes a second
            wakeups.finished(item)
    return order


def test_a_quiet_namespace_runs_before_the_noisy_namespaces_second_item() -> None:
    now = [0.0]
    wakeups = scheduler(now, workers=1, per_namespace=1)
    for index in range(50):  # the noisy tenant: 50 rechecks due at once, each taking a second
        wakeups.schedule(KIND, "noisy", f"busy-{index:02d}", 0.0)
    wakeups.schedule(KIND, "quiet", "calm", 0.5)  # due half a second later

    order = run_all(wakeups, now)

    assert len(order) == 51
    # One worker: the noisy tenant's first item runs; at 1.0 the quiet one is due and goes next, before the
    # noisy tenant's second (the loop this replaced ran all 50 first: 50 s late).
    assert order[:3] == [("noisy", "busy-00"), ("quiet", "calm"), ("noisy", "busy-01")]


def test_namespaces_take_turns_and_one_namespace_holds_at_most_its_share_of_workers() -> None:
    now = [0.0]
    wakeups = scheduler(now, workers=4, per_namespace=2)
    for index in range(10):
        wakeups.schedule(KIND, "noisy", f"busy-{index}", 0.0)
    for name in ("a", "b"):
        wakeups.schedule(KIND, "quiet", name, 0.0)
    wakeups.schedule(KIND, "other", "x", 0.0)

    started = wakeups.dispatch()

    # Four workers, at most two for any one namespace: every namespace with due work gets one at once.
    assert sorted((item.key[1], item.key[2]) for item in started) == [
        ("noisy", "busy-0"), ("noisy", "busy-1"), ("other", "x"), ("quiet", "a")]
    assert wakeups.dispatch() == []  # all four workers are busy
    quiet = next(item for item in started if item.key[1] == "quiet")
    wakeups.finished(quiet)
    assert [(i.key[1], i.key[2]) for i in wakeups.dispatch()] == [("quiet", "b")]  # not the noisy one's third


def test_one_object_never_runs_twice_at_once_and_a_repeated_wake_up_is_merged() -> None:
    now = [0.0]
    wakeups = scheduler(now, workers=4, per_namespace=4)
    wakeups.schedule(KIND, "team", "web", 0.0)
    [first] = wakeups.dispatch()
    wakeups.schedule(KIND, "team", "web", 0.0)  # asked again while it runs
    assert wakeups.dispatch() == []
    wakeups.schedule(KIND, "team", "web", 0.0)  # and again: still one look after it
    assert wakeups.dispatch() == []
    wakeups.finished(first)
    [again] = wakeups.dispatch()
    assert again.key == ("InfraDeployment", "team", "web")
    wakeups.finished(again)
    assert wakeups.dispatch() == []


def test_a_moment_per_reason_cancelling_one_keeps_the_other() -> None:
    now = [0.0]
    wakeups = scheduler(now, workers=1, per_namespace=1)
    wakeups.schedule(KIND, "team", "web", 30.0)  # the next drift check
    wakeups.schedule(KIND, "team", "web", 2.0, "poll")  # a running Job's lock
    assert wakeups.scheduled(KIND, "team", "web") == 2.0
    wakeups.cancel(KIND, "team", "web", "poll")  # the Job finished
    assert wakeups.scheduled(KIND, "team", "web") == 30.0
    now[0] = 29.0
    assert wakeups.dispatch() == []
    wakeups.cancel(KIND, "team", "web")
    now[0] = 31.0
    assert wakeups.dispatch() == [] and wakeups.scheduled(KIND, "team", "web") is None


def test_the_fair_queue_serves_namespaces_round_robin() -> None:
    queue = FairQueue(per_namespace=10)
    for index in range(3):
        queue.add(Item(("K", "a", f"a{index}"), 0.0))
    queue.add(Item(("K", "b", "b0"), 0.0))
    queue.add(Item(("K", "c", "c0"), 0.0))
    taken = []
    while (item := queue.take()) is not None:
        taken.append(item.key[2])
    assert taken == ["a0", "b0", "c0", "a1", "a2"]


def test_waiting_backs_off_to_four_times_the_interval() -> None:
    assert [waiting_delay(n, 1.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_submitted_work_runs_on_the_schedulers_workers_and_a_slow_one_times_out() -> None:
    async def scenario() -> tuple[str, BaseException | None]:
        wakeups = Wakeups(workers=2, per_namespace=1, timeout=0.2)
        task = asyncio.create_task(wakeups.run())
        try:
            done = await wakeups.submit("Investigation", "team", "fast", lambda: "found")
            failure: BaseException | None = None
            try:
                await wakeups.submit("Investigation", "team", "slow", lambda: __import__("time").sleep(1.0))
            except WorkTimeout as exc:
                failure = exc
            return done, failure
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    result, failure = asyncio.run(scenario())
    assert result == "found"
    assert isinstance(failure, WorkTimeout) and "longer than 0.2s" in str(failure)


@pytest.mark.parametrize("exc", [ValueError("bad input")])
def test_a_submitters_exception_comes_back_to_it(exc: Exception) -> None:
    async def scenario() -> None:
        wakeups = Wakeups(workers=1)
        task = asyncio.create_task(wakeups.run())
        try:
            def fail() -> None:
                raise exc
            with pytest.raises(ValueError, match="bad input"):
                await wakeups.submit("Investigation", "team", "x", fail)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
