"""Instructions per request under valgrind (callgrind): the replay and recording targets
measured without the noise of a shared machine.

Timings on a machine with noisy neighbours move by 10-30 % from run to run; instruction
counts repeat to within a few hundred per request (the hash seed is fixed). Each
contender runs in its own process under ``valgrind --tool=callgrind``, twice: once doing
only its set-up (imports, a warm-up, the cassette load) and once doing the same and then
the measured work; the difference, divided by N, is the cost per request.

* replay: N httpx requests (the ``replay_http.py`` traffic) answered by
  ``httpx.MockTransport`` from a dict (the floor) and by ``agenttape.transport()`` in
  ``mode="none"`` (the engine's index built inside the measured part, as in
  ``replay_http.py``);
* recording: the same N requests to the loopback server (in a process of its own, not
  counted) by a plain ``httpx.Client()``, and by one with ``agenttape.transport()`` inside
  ``use_cassette(mode="record")``: the requests alone, and with the cassette written at
  the session's exit.

Instructions are not time: the same count runs slower when its code and data miss the
CPU's caches more often, which ``replay_http.py`` and ``record_overhead.py`` show. Needs
valgrind (``apt install valgrind``); without it the script says so and exits.

    .venv/bin/python benchmarks/instructions.py [--quick] [--n 300]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


# -- the measured work (run in a worker process, under valgrind) ---------------------------

def _worker(contender: str, measured: bool, folder: Path, own: Path) -> None:
    import httpx
    from _common import config
    from record_overhead import SERVER
    from replay_http import drive, mock_transport, workload

    import agenttape

    spec = json.loads((folder / "spec.json").read_text())
    if contender in ("mock", "agenttape"):
        calls = [tuple(c) for c in spec["calls"]]
        canned = {(m, u, bytes.fromhex(b)): (s, [tuple(h) for h in hs], bytes.fromhex(c))
                  for m, u, b, s, hs, c in spec["canned"]}
        # Warm-up, both ways: first-use caches and lazy imports are not the per-request cost.
        with httpx.Client(transport=mock_transport(canned)) as client:
            drive(client, calls[:4])
        with agenttape.use_cassette("http", mode="none", config=config(folder)), \
                httpx.Client(transport=agenttape.transport()) as client:
            drive(client, calls[:4])
        if contender == "mock":
            with httpx.Client(transport=mock_transport(canned)) as client:
                if measured:
                    drive(client, calls)
        else:
            with agenttape.use_cassette("http", mode="none", config=config(folder)), \
                    httpx.Client(transport=agenttape.transport()) as client:
                if measured:
                    drive(client, calls)
        return
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        calls = workload(base, spec["n"])
        with httpx.Client(transport=agenttape.transport()) as client:
            with agenttape.use_cassette("warm", mode="record", config=config(own)):
                drive(client, workload(base, 4))
            if contender == "plain":
                if measured:
                    drive(client, calls)
            elif contender == "recorded":
                if measured:
                    with agenttape.use_cassette("recorded", mode="record",
                                                config=config(own)):
                        drive(client, calls)
            else:  # the requests alone: the process ends inside the session, unwritten
                session = agenttape.use_cassette("recorded", mode="record", config=config(own))
                session.__enter__()
                if measured:
                    drive(client, calls)
                client.close()  # the server waits for its open connection to end
                server.stdin.close()  # type: ignore[union-attr]
                server.wait(timeout=60)
                os._exit(0)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=60)




# -- the driver ---------------------------------------------------------------------------

def _prepare(folder: Path, n: int) -> None:
    """Record the replay traffic once (natively) and write what the workers need."""
    from replay_http import record, workload

    from agenttape._standin import LLMServer

    server = LLMServer().start()
    try:
        calls = workload(server.url, n)
        canned = record(server, calls, folder, None)
    finally:
        server.stop()
    spec = {
        "n": n,
        "calls": calls,
        "canned": [[m, u, b.hex(), s, hs, c.hex()] for (m, u, b), (s, hs, c) in canned.items()],
    }
    (folder / "spec.json").write_text(json.dumps(spec))


def _instructions(valgrind: str, contender: str, measured: bool, folder: Path) -> int:
    out = folder / f"callgrind.{contender}.{int(measured)}"
    own = folder / f"{contender}.{int(measured)}"  # what this worker writes, its cache too
    own.mkdir()
    env = {**os.environ, "PYTHONHASHSEED": "0", "AGENTTAPE_CACHE_DIR": str(own / "cache")}
    subprocess.run(
        [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
         str(Path(__file__).resolve()), "--worker", contender, str(int(measured)),
         str(folder), str(own)],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=1800,  # a worker that hangs (a server that never answers) fails the run
    )
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {out}")


def main() -> None:
    from _common import header, parser, scratch, table, verdict

    p = parser(__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=None, help="requests per contender (default 300)")
    args = p.parse_args()
    n = args.n or (100 if args.quick else 300)
    header(f"instructions per request, N={n:,} (callgrind, PYTHONHASHSEED=0)", timing=False)
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed: nothing measured (apt install valgrind)")
        return
    contenders = ["mock", "agenttape", "plain", "requests", "recorded"]
    with scratch("instructions") as folder:
        _prepare(folder, n)
        jobs = [(c, m) for c in contenders for m in (False, True)]
        start = time.perf_counter()
        # Two at a time: one per CPU of a small machine; callgrind runs ~50x slower.
        with ThreadPoolExecutor(max_workers=max(1, min(4, (os.cpu_count() or 2)))) as pool:
            counts = dict(zip(jobs, pool.map(
                lambda job: _instructions(valgrind, job[0], job[1], folder), jobs), strict=True))
        print(f"{len(jobs)} runs under valgrind in {time.perf_counter() - start:.0f} s\n")
    per = {c: (counts[(c, True)] - counts[(c, False)]) / n for c in contenders}
    rows: list[list[Any]] = [
        ["replay", "httpx.MockTransport (floor)", round(per["mock"]), "-"],
        ["replay", "agenttape.transport(), mode none", round(per["agenttape"]),
         f"{per['agenttape'] / per['mock']:.3f}x"],
        ["record", "plain httpx.Client()", round(per["plain"]), "-"],
        ["record", "agenttape, mode record, requests only", round(per["requests"]),
         f"{(per['requests'] / per['plain'] - 1) * 100:+.1f} %"],
        ["record", "agenttape, mode record, incl. writing", round(per["recorded"]),
         f"{(per['recorded'] / per['plain'] - 1) * 100:+.1f} %"],
    ]
    print(table(["", "contender", "instructions per request", "vs floor"], rows))
    print()
    replay = per["agenttape"] / per["mock"]
    record = per["recorded"] / per["plain"] - 1
    print(f"replay <= 1.25x MockTransport, in instructions: {replay:.3f}x "
          f"{verdict(replay <= 1.25)}")
    print(f"recording overhead <= 10 %, in the client's instructions: {record * 100:+.1f} % "
          f"{verdict(record <= 0.10)}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3] == "1", Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
