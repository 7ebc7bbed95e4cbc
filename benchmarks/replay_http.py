"""Replay N distinct httpx requests: MockTransport (the floor) vs agenttape vs VCR.py.

The same traffic (alternating ``GET /json?i=..`` and ``POST /echo?i=..`` with a JSON body)
is recorded once from the loopback stand-in server, by agenttape and by VCR.py, then the
server is stopped and each contender replays it with a fresh client:

* floor: ``httpx.MockTransport`` answering from a dict of the recorded responses;
* agenttape: ``agenttape.transport()`` inside ``use_cassette(mode="none")``, the cassette
  already loaded (the session is entered before the clock starts; the engine's index is
  built at the first lookup, inside the timed loop);
* VCR.py: ``record_mode="none"``, cassette loaded before the clock starts.

Times are the best of several runs, all in this one process, contenders interleaved so a
noisy neighbour hurts all of them alike. VCR.py scans its cassette linearly per request, so
it is only run up to ``--vcr-max`` and its time beyond that is extrapolated (a per-request
cost fitted as a + b*N on the measured sizes), marked "~".

    .venv/bin/python benchmarks/replay_http.py [--quick] [--sizes 200,2000] [--runs 5]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
from _common import (
    best,
    config,
    header,
    parser,
    scratch,
    table,
    timed,
    use_wall_clock,
    verdict,
)

import agenttape
from agenttape._standin import LLMServer

Call = tuple[str, str, Any]


def workload(base: str, n: int) -> list[Call]:
    return [
        ("GET", f"{base}/json?i={i}&name=item-{i}", None) if i % 2 == 0
        else ("POST", f"{base}/echo?i={i}", {"i": i, "text": f"message number {i}"})
        for i in range(n)
    ]


def drive(client: httpx.Client, calls: list[Call], keep: bool = False) -> list[httpx.Response]:
    """Send ``calls``; the responses are kept only when asked (thousands of live responses
    would make the garbage collector's passes, and so every request, slower as N grows)."""
    kept = []
    for method, url, body in calls:
        response = client.request(method, url, json=body)
        if keep:
            kept.append(response)
    return kept


def record(server: LLMServer, calls: list[Call], folder: Path, vcr_path: Path | None
           ) -> dict[tuple[str, str, bytes], tuple[int, list[tuple[str, str]], bytes]]:
    """Record the traffic with agenttape (and VCR.py); return the canned floor responses."""
    canned = {}
    with agenttape.use_cassette("http", mode="record", config=config(folder)), \
            httpx.Client(transport=agenttape.transport()) as client:
        for response in drive(client, calls, keep=True):
            key = (response.request.method, str(response.request.url), response.request.content)
            canned[key] = (response.status_code, response.headers.multi_items(), response.content)
    if vcr_path is not None:
        with _vcr().use_cassette(str(vcr_path), record_mode="all"), httpx.Client() as client:
            drive(client, calls)
    return canned


def _vcr() -> Any:
    import vcr

    # The cheapest matching VCR.py offers (its default also parses and compares queries).
    return vcr.VCR(match_on=("method", "uri"))


def mock_transport(canned: dict[Any, Any]) -> httpx.MockTransport:
    """The floor: canned responses from a dict keyed by method, URL and body."""
    def handler(request: httpx.Request) -> httpx.Response:
        status, headers, content = canned[(request.method, str(request.url), request.content)]
        return httpx.Response(status, headers=headers, content=content)

    return httpx.MockTransport(handler)


def run_mock(calls: list[Call], canned: dict[Any, Any]) -> float:
    with httpx.Client(transport=mock_transport(canned)) as client:
        return timed(lambda: drive(client, calls))


def run_agenttape(calls: list[Call], folder: Path, check: dict[Any, Any] | None = None
                  ) -> float:
    with agenttape.use_cassette("http", mode="none", config=config(folder)) as session, \
            httpx.Client(transport=agenttape.transport()) as client:
        out: list[httpx.Response] = []
        seconds = timed(lambda: out.extend(drive(client, calls, keep=check is not None)))
        assert session.engine is not None and session.engine.replayed == len(calls)
    if check is not None:  # untimed: the replayed bodies are the recorded ones
        for response in out:
            req = response.request
            status, _, content = check[(req.method, str(req.url), req.content)]
            assert response.status_code == status
            assert json.loads(response.content) == json.loads(content)
    return seconds


def run_vcr(calls: list[Call], path: Path) -> float:
    with _vcr().use_cassette(str(path), record_mode="none") as cassette, \
            httpx.Client() as client:
        seconds = timed(lambda: drive(client, calls))
        assert cassette.play_count == len(calls)
    return seconds


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--sizes", default=None, help="comma-separated N (default 200,2000,20000)")
    p.add_argument("--runs", type=int, default=None, help="runs per contender (best is kept)")
    p.add_argument("--vcr-max", type=int, default=2000, help="largest N VCR.py really runs")
    p.add_argument("--vcr-runs", type=int, default=1, help="runs of VCR.py at N >= 2,000")
    args = p.parse_args()
    use_wall_clock(args.wall)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [200, 2000] if args.quick else [200, 2000, 20000])
    runs = args.runs or (3 if args.quick else 5)

    header("replay of N distinct httpx requests, cassette loaded, server stopped")
    results: dict[int, dict[str, float]] = {}
    vcr_measured: dict[int, float] = {}
    with scratch("replay-http") as tmp:
        for n in sizes:
            folder = tmp / f"n{n}"
            vcr_path = folder / "vcr.yaml" if n <= args.vcr_max else None
            server = LLMServer().start()
            try:
                calls = workload(server.url, n)
                canned = record(server, calls, folder, vcr_path)
            finally:
                server.stop()
            hits = server.hits
            run_agenttape(calls, folder, check=canned)  # correctness pass, untimed
            mock, tape, vcr_times = [], [], []
            for r in range(runs):
                mock.append(run_mock(calls, canned))
                tape.append(run_agenttape(calls, folder))
                if vcr_path is not None and (n < 2000 or r < args.vcr_runs):
                    vcr_times.append(run_vcr(calls, vcr_path))
            assert server.hits == hits, "a replay reached the server"
            results[n] = {"mock": best(mock), "agenttape": best(tape)}
            if vcr_times:
                vcr_measured[n] = best(vcr_times)
            print(f"N={n:,}: mock {best(mock):.3f}s agenttape {best(tape):.3f}s"
                  + (f" vcr {best(vcr_times):.3f}s" if vcr_times else ""), file=sys.stderr)

    fit = _fit(vcr_measured)
    rows = []
    for n, r in results.items():
        if n in vcr_measured:
            vcr_s, mark = vcr_measured[n], ""
        elif fit is not None:
            a, b = fit
            vcr_s, mark = n * (a + b * n), "~"
        else:
            vcr_s, mark = float("nan"), "?"
        rows.append([
            f"{n:,}", r["mock"], r["agenttape"], f"{mark}{vcr_s:,.2f}",
            r["mock"] / n * 1e6, r["agenttape"] / n * 1e6, f"{mark}{vcr_s / n * 1e6:,.0f}",
            f"{r['agenttape'] / r['mock']:.2f}x", f"{mark}{r['agenttape'] / vcr_s:.4f}x",
        ])
    print(table(["N", "mock s", "agenttape s", "VCR.py s", "mock µs/req", "agenttape µs/req",
                 "VCR.py µs/req", "agenttape/mock", "agenttape/VCR.py"], rows))
    print()
    if any(n not in vcr_measured for n in results):
        print(f"~ VCR.py extrapolated beyond N={args.vcr_max:,}: per-request a + b*N fitted on "
              f"N={', '.join(f'{n:,}' for n in sorted(vcr_measured))}")
    if 2000 in results:
        r = results[2000]
        ratio = r["agenttape"] / r["mock"]
        print(f"target agenttape <= 1.25x MockTransport at N=2,000: {ratio:.2f}x "
              f"{verdict(ratio <= 1.25)}")
        if 2000 in vcr_measured:
            vratio = r["agenttape"] / vcr_measured[2000]
            print(f"target agenttape <= 0.05x VCR.py at N=2,000: {vratio:.4f}x "
                  f"{verdict(vratio <= 0.05)}")
    if len(results) > 1:
        lo, hi = min(results), max(results)
        flat = (results[hi]["agenttape"] / hi) / (results[lo]["agenttape"] / lo)
        print(f"agenttape per-request cost at N={hi:,} / at N={lo:,}: {flat:.2f} "
              "(flat is about 1)")


def _fit(measured: dict[int, float]) -> tuple[float, float] | None:
    """Per-request seconds as a + b*N through the two largest measured sizes."""
    if len(measured) < 2:
        return None
    (n1, t1), (n2, t2) = sorted(measured.items())[-2:]
    b = (t2 / n2 - t1 / n1) / (n2 - n1)
    return t1 / n1 - b * n1, b


if __name__ == "__main__":
    main()
