"""What recording costs: N requests through agenttape (mode="record") vs the same requests
made without it, against the loopback stand-in server.

The server runs in its own process (as a real API would be elsewhere), so the client's
extra work is not also slowing the server down through the GIL. The same traffic as
``replay_http.py`` is sent by a plain ``httpx.Client()``, by an
``httpx.Client(transport=agenttape.transport())`` inside ``use_cassette(mode="record")``
and, for comparison, by a plain client inside VCR.py's ``use_cassette(record_mode="all")``
with the same ``match_on`` as ``replay_http.py``. Each recorder's time is shown for the
requests alone and with the cassette's exit, which writes it. Wall-clock, best of several
alternating runs.

    .venv/bin/python benchmarks/record_overhead.py [--quick] [--n 1000] [--runs 5]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from _common import config, header, parser, scratch, table, verdict
from replay_http import Call, _vcr, drive, workload

import agenttape

SERVER = """
import sys
from agenttape._standin import LLMServer
server = LLMServer().start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""


def plain(calls: list[Call], warm: str) -> float:
    with httpx.Client() as client:
        client.get(warm)  # the connection is open before the clock starts, in both cases
        start = time.perf_counter()
        drive(client, calls)
        return time.perf_counter() - start


def recorded(calls: list[Call], warm: str, folder: Path) -> tuple[float, float]:
    with httpx.Client(transport=agenttape.transport()) as client:
        client.get(warm)
        session = agenttape.use_cassette("record", mode="record", config=config(folder))
        start = time.perf_counter()
        session.__enter__()
        drive(client, calls)
        requests_done = time.perf_counter()
        session.__exit__(None, None, None)
        written = time.perf_counter()
    assert session.written and session.engine is not None
    assert session.engine.live_count == len(calls)
    return requests_done - start, written - start


def vcr_recorded(calls: list[Call], warm: str, folder: Path) -> tuple[float, float]:
    path = folder / "vcr.yaml"
    path.unlink(missing_ok=True)
    with httpx.Client() as client:
        client.get(warm)
        start = time.perf_counter()
        with _vcr().use_cassette(str(path), record_mode="all"):
            drive(client, calls)
            requests_done = time.perf_counter()
        written = time.perf_counter()
    assert path.exists()
    return requests_done - start, written - start


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=None, help="requests per run (default 1000)")
    p.add_argument("--runs", type=int, default=None, help="runs of each (best is kept)")
    p.add_argument("--no-vcr", action="store_true", help="leave VCR.py out (it is slow)")
    args = p.parse_args()
    n = args.n or (300 if args.quick else 1000)
    runs = args.runs or (3 if args.quick else 5)
    header(f"recording {n:,} httpx requests vs making them unrecorded (wall-clock)",
           timing=False)

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        calls = workload(base, n)
        warm = f"{base}/json?warm=1"
        bare, loop, total, vcr_loop, vcr_total = [], [], [], [], []
        with scratch("record") as tmp:
            for _ in range(runs):
                bare.append(plain(calls, warm))
                requests_only, with_write = recorded(calls, warm, tmp)
                loop.append(requests_only)
                total.append(with_write)
                if not args.no_vcr:
                    requests_only, with_write = vcr_recorded(calls, warm, tmp)
                    vcr_loop.append(requests_only)
                    vcr_total.append(with_write)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)

    b = min(bare)

    def row(label: str, seconds: float) -> list[Any]:
        return [label, seconds, seconds / n * 1e3, f"{(seconds / b - 1) * 100:+.1f} %"]

    r, w = min(loop), min(total)
    rows = [["without agenttape", b, b / n * 1e3, "-"],
            row("recording, requests only", r),
            row("recording, incl. writing the cassette", w)]
    if vcr_loop:
        rows += [row("VCR.py recording, requests only", min(vcr_loop)),
                 row("VCR.py recording, incl. writing the cassette", min(vcr_total))]
    print(table(["", "seconds", "ms per request", "overhead"], rows))
    print()
    print(f"target recording overhead <= 10 % (cassette write included): "
          f"{(w / b - 1) * 100:+.1f} % {verdict(w / b - 1 <= 0.10)}")


if __name__ == "__main__":
    main()
