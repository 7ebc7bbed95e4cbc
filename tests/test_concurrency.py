"""Concurrency: one session shared by tasks and threads, sessions side by side, processes.

Every answer encodes its caller's arguments, so a reply delivered to the wrong caller, or
replayed from another caller's recording, fails the check. Replays run with the loopback
server stopped and in a shuffled order, so they are served by content, not by position.
(``pytest -n 2`` workers recording into one folder: tests/test_pytest_plugin.py.)
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import random
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from llm_server import LLMServer

import agenttape

REPO = Path(__file__).resolve().parent.parent
TASKS = 50
THREADS = 8
ROUNDS = 2  # distinct + identical tool and HTTP calls per caller per round


@agenttape.tool
async def async_tool(caller: str, n: int) -> str:
    await asyncio.sleep(random.random() / 1000)  # finish out of order
    return f"tool:{caller}:{n}"


@agenttape.tool
def sync_tool(caller: str, n: int) -> str:
    return f"tool:{caller}:{n}"


@agenttape.tool
def shared_tool(topic: str) -> str:
    return f"shared:{topic}"


def _expected(caller: str) -> list[Any]:
    out: list[Any] = []
    for n in range(ROUNDS):
        out += [f"tool:{caller}:{n}", {"caller": caller, "n": str(n)}, "shared:same",
                {"same": "1"}]
    return out


async def _task(client: httpx.AsyncClient, url: str, caller: str, jitter: bool) -> list[Any]:
    got: list[Any] = []
    for n in range(ROUNDS):
        if jitter:
            await asyncio.sleep(random.random() / 500)
        got.append(await async_tool(caller, n))
        got.append((await client.get(f"{url}/json", params={"caller": caller, "n": n})).json())
        got.append(await asyncio.to_thread(shared_tool, "same"))
        got.append((await client.get(f"{url}/json?same=1")).json())
    return got


def _thread(url: str, caller: str, jitter: bool, results: dict[str, list[Any]]) -> None:
    got: list[Any] = []
    with httpx.Client(transport=agenttape.transport()) as client:
        for n in range(ROUNDS):
            if jitter:
                threading.Event().wait(random.random() / 500)
            got.append(sync_tool(caller, n))
            got.append(client.get(f"{url}/json", params={"caller": caller, "n": n}).json())
            got.append(shared_tool("same"))
            got.append(client.get(f"{url}/json?same=1").json())
    results[caller] = got


def _run_all(url: str, jitter: bool) -> dict[str, list[Any]]:
    """50 tasks on the event loop and 8 threads, all at once, in the one open session."""
    results: dict[str, list[Any]] = {}
    threads = [threading.Thread(target=_thread, args=(url, f"thread{i}", jitter, results))
               for i in range(THREADS)]
    for thread in threads:
        thread.start()

    async def tasks() -> None:
        async with httpx.AsyncClient(transport=agenttape.transport()) as client:
            callers = [f"task{i}" for i in range(TASKS)]
            if jitter:
                random.shuffle(callers)
            answers = await asyncio.gather(*(_task(client, url, c, jitter) for c in callers))
        results.update(zip(callers, answers, strict=True))

    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    return results


def test_tasks_and_threads_sharing_one_session_each_get_their_own_answers(
    llm_server: LLMServer,
) -> None:
    with agenttape.use_cassette("shared", mode="record") as recording:
        live = _run_all(llm_server.url, jitter=False)
    callers = [f"task{i}" for i in range(TASKS)] + [f"thread{i}" for i in range(THREADS)]
    assert live == {c: _expected(c) for c in callers}
    calls = (TASKS + THREADS) * ROUNDS * 4
    stored = agenttape.read_cassette(recording.path).interactions
    assert len(stored) == calls
    assert [i.index for i in stored] == list(range(calls))

    hits = llm_server.hits
    llm_server.stop()
    with agenttape.use_cassette("shared", mode="none") as replay:
        replayed = _run_all(llm_server.url, jitter=True)
    assert replayed == live
    assert llm_server.hits == hits
    assert replay.engine is not None
    assert (replay.engine.replayed, replay.engine.live_count) == (calls, 0)


def test_two_sessions_in_two_threads_never_see_each_others_calls(
    llm_server: LLMServer,
) -> None:
    barrier = threading.Barrier(2)
    seen: dict[str, Any] = {}

    def run(name: str) -> None:
        # An unbound transport: it records into whichever session is active where it runs.
        with agenttape.use_cassette(name, mode="record") as session, httpx.Client(
                transport=agenttape.transport()) as client:
            for n in range(20):
                if n % 5 == 0:
                    barrier.wait()  # interleave the two sessions' calls
                sync_tool(name, n)
                client.get(f"{llm_server.url}/json", params={"caller": name, "n": n})
                # A worker thread sees the session when it is handed the context.
                context = contextvars.copy_context()
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(context.run, sync_tool, name, 100 + n).result()
            seen[name] = session.path

    threads = [threading.Thread(target=run, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in ("left", "right"):
        interactions = agenttape.read_cassette(seen[name]).interactions
        callers = {str(i.request.get("args", {}).get("caller")) for i in interactions
                   if i.kind == "tool"}
        urls = {str(i.request["url"]) for i in interactions if i.kind == "http"}
        assert callers == {name}
        assert len(interactions) == 60
        assert all(f"caller={name}" in url for url in urls)


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import agenttape

    tag, go, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])

    @agenttape.tool
    def lookup(i):
        return {"writer": tag, "i": i, "pad": tag * 5000}

    while not go.exists():
        time.sleep(0.001)
    for _ in range(rounds):
        with agenttape.use_cassette("contested", record=True, tags=[tag]):
            for i in range(100):
                lookup(i)
""")


def test_two_processes_writing_one_cassette_leave_it_whole(tmp_path: Path) -> None:
    """Policy (docs/security.md): last writer wins, atomically; never a mix of the two."""
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO), "AGENTTAPE_NO_CACHE": "1"}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, tag, str(go), "15"], env=env)
               for tag in ("A", "B")]
    path = Path("cassettes/contested.yaml")

    def whole() -> str:
        cassette = agenttape.read_cassette(path)
        [tag] = cassette.meta["tags"]
        assert [i.response for i in cassette.interactions] == [
            {"writer": tag, "i": i, "pad": tag * 5000} for i in range(100)]
        return str(tag)

    go.touch()
    seen: set[str] = set()
    reads = 0
    while any(w.poll() is None for w in writers):
        if path.exists():
            seen.add(whole())  # read while both write: never torn, never interleaved
            reads += 1
    assert [w.wait() for w in writers] == [0, 0]
    assert whole() in {"A", "B"}
    assert reads > 0 and seen <= {"A", "B"}
    assert sorted(p.name for p in Path("cassettes").iterdir()) == ["contested.yaml"]
