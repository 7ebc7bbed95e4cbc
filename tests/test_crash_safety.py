"""Crash safety: a writer killed at any instant leaves the old cassette or the new one, whole.

A helper process imports agenttape once and forks a fresh writer per round (a cold
interpreter per kill would spend the test's time starting Python). Each writer records
and writes a cassette with a 600 kB binary sidecar asset, alternating between two versions,
until it is SIGKILLed: in half the rounds at a random instant, in the other half the
moment a temporary file appears beside the cassette (plus up to 3 ms), so that kills land
inside the writes themselves and not only in the recording around them. The file must
then load (assets verified against their hashes) and equal one of the two versions.

``AGENTTAPE_CRASH_KILLS=500`` runs more rounds locally (docs/security.md).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import agenttape
from agenttape.boundaries import from_plain

REPO = Path(__file__).resolve().parent.parent
KILLS = int(os.environ.get("AGENTTAPE_CRASH_KILLS", "30"))
CALLS = 30  # interactions per version
PAYLOAD = 2_000  # characters per interaction: ~60 kB of YAML per write
BLOB = 600_000  # bytes of the binary result that goes to the sidecar

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="needs fork and SIGKILL"
)

HELPER = f"""
import os, signal, sys, time
import agenttape
from agenttape.config import Config

CALLS, PAYLOAD, BLOB = {CALLS}, {PAYLOAD}, {BLOB}
config = Config(cassette_dir=sys.argv[1])

@agenttape.tool
def fetch(version, i):
    return {{"i": i, "payload": version * PAYLOAD}}

@agenttape.tool
def blob(version):
    return version.encode() * BLOB

def cycle(version):
    with agenttape.use_cassette("big", mode="record", config=config, tags=[version]):
        for i in range(CALLS):
            fetch(version, i)
        blob(version)

def writer(rounds):
    n = 0
    while rounds is None or n < rounds:
        cycle("AB"[n % 2])
        n += 1

started = time.perf_counter()
cycle("A")  # the first version on disk, and the time one write cycle takes
print(time.perf_counter() - started, flush=True)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed writers are reaped by the kernel
for line in sys.stdin:
    command = line.split()
    pid = os.fork()
    if pid == 0:
        try:
            writer(int(command[1]) if command[0] == "finish" else None)
        finally:
            os._exit(0)
    print(pid, flush=True)
"""


def expected(version: str) -> list[Any]:
    return [{"i": i, "payload": version * PAYLOAD} for i in range(CALLS)] + [
        version.encode() * BLOB]


def check_whole(path: Path) -> str:
    """The version the file holds; fails unless it is one of the two, entire."""
    cassette = agenttape.read_cassette(path)  # parses, and verifies the asset's sha256
    [version] = cassette.meta["tags"]
    responses = [i.response for i in cassette.interactions]
    responses[-1] = from_plain(responses[-1])
    assert responses == expected(version)
    assert "incomplete" not in cassette.meta
    return str(version)


def _temp_files(folder: Path) -> list[Path]:
    return [*folder.glob(".big.yaml.*.tmp"), *folder.glob("big.assets/.*.tmp")]


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.001)
    raise AssertionError(f"writer {pid} did not die")


def test_sigkill_at_random_instants_never_leaves_a_torn_cassette(tmp_path: Path) -> None:
    folder = tmp_path / "tapes"
    env = {**os.environ, "PYTHONPATH": str(REPO), "AGENTTAPE_NO_CACHE": "1"}
    path = folder / "big.yaml"
    rng = random.Random(os.environ.get("AGENTTAPE_CRASH_SEED"))
    seen: dict[str, int] = {}
    mid_write = 0
    with subprocess.Popen([sys.executable, "-c", HELPER, str(folder)], env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as helper:
        assert helper.stdin is not None and helper.stdout is not None
        try:
            cycle_seconds = float(helper.stdout.readline())
            assert check_whole(path) == "A"
            for n in range(KILLS):
                helper.stdin.write("run\n")
                helper.stdin.flush()
                pid = int(helper.stdout.readline())
                if n % 2:
                    # Anywhere in the first two cycles: recording, dumping, writing.
                    time.sleep(rng.uniform(0, 2 * cycle_seconds))
                else:
                    deadline = time.monotonic() + 20 * cycle_seconds + 5
                    while not _temp_files(folder) and time.monotonic() < deadline:
                        time.sleep(0)
                    time.sleep(rng.uniform(0, 0.003))
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid)
                version = check_whole(path)
                seen[version] = seen.get(version, 0) + 1
                leftovers = _temp_files(folder)
                if leftovers:
                    mid_write += 1  # killed between creating the temp file and the rename
                    for stale in leftovers:
                        stale.unlink()
            # A writer that ends normally leaves no temporary file behind.
            helper.stdin.write("finish 3\n")
            helper.stdin.flush()
            _wait_gone(int(helper.stdout.readline()))
            assert check_whole(path) == "A"  # three cycles: A, B, A
            assert sorted(p.name for p in folder.iterdir()) == ["big.assets", "big.yaml"]
            assert len(list((folder / "big.assets").iterdir())) == 1
        finally:
            helper.kill()
    # The kills did land inside writes (else the test proved nothing about them).
    assert mid_write >= 1, (seen, mid_write)
    assert set(seen) <= {"A", "B"}


class Crash(Exception):
    pass


@agenttape.tool
def step(n: int) -> int:
    return n * 10


@pytest.mark.parametrize("mode", ["record", "all", "once", "new_episodes"])
def test_a_session_that_raises_still_writes_what_it_recorded(mode: str) -> None:
    """Every mode that writes keeps what ran before the crash, marked incomplete."""
    if mode == "new_episodes":
        with agenttape.use_cassette("crash", record=True):
            step(0)
    with pytest.raises(Crash), agenttape.use_cassette("crash", mode=mode):
        step(1)
        step(2)
        raise Crash
    cassette = agenttape.read_cassette(Path("cassettes/crash.yaml"))
    assert [i.response for i in cassette.interactions] == (
        [0, 10, 20] if mode == "new_episodes" else [10, 20])
    assert cassette.meta["incomplete"] is True
    assert not list(Path("cassettes").glob(".*.tmp"))


def test_a_failed_write_keeps_the_old_cassette_and_leaves_no_temp_file() -> None:
    """The write itself failing (data that cannot be stored) must not damage the file."""
    with agenttape.use_cassette("keep", record=True):
        step(1)
    before = Path("cassettes/keep.yaml").read_bytes()

    @agenttape.tool
    def odd() -> float:
        return float("nan")

    with pytest.raises(ValueError, match="not a finite number"):  # noqa: SIM117
        with agenttape.use_cassette("keep", record=True):
            odd()
    assert Path("cassettes/keep.yaml").read_bytes() == before
    assert sorted(p.name for p in Path("cassettes").iterdir()) == ["keep.yaml"]
