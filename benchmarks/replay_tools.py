"""Replay N tool calls with distinct arguments: agenttape vs agenttape 0.1.8 from PyPI.

agenttape 0.1.8 is installed into temporary virtualenvs (``python -m venv`` then
``pip install agenttape==0.1.8``, and once more with ``pyyaml``: 0.1.8 has no dependency
and reads YAML with its own parser unless PyYAML is installed, then with PyYAML's
pure-Python ``SafeLoader``). PyPI must be reachable, otherwise those rows are skipped and
the script says so. Both versions run the same worker script as a subprocess, each
with its own interpreter: record N calls of a ``@agenttape.tool`` function, then replay
them with ``use_cassette(mode="none")`` several times. Reported per version: the load
(entering the session, which reads the cassette), the replay of the N calls (the first one
builds the engine's index) and both together, best of the runs. For agenttape, the load
is also shown with its parse cache warm (the cassette unchanged since its last load).

    .venv/bin/python benchmarks/replay_tools.py [--quick] [--sizes 2000,20000] [--runs 3]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

from _common import REPO, header, parser, scratch, table, verdict

OLD = "0.1.8"

# Runs under either agenttape: only the API both versions share (use_cassette, @tool).
WORKER = r'''
import json, os, sys, time
clock = time.perf_counter if os.environ.get("BENCH_WALL") else time.process_time
action, n, folder, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
import agenttape

@agenttape.tool
def forecast(city: str, day: int, units: str = "metric") -> dict:
    return {"city": city, "day": day, "units": units, "high": (day * 7) % 35,
            "summary": f"Forecast for {city}, day {day}: mild, light wind from the west."}

calls = [(f"city-{i}", i % 365) for i in range(n)]
if action == "record":
    with agenttape.use_cassette("tools", mode="record", cassette_dir=folder):
        for city, day in calls:
            forecast(city, day)
    print(json.dumps({}))
    sys.exit()
out = {"load": [], "replay": [], "cached_load": []}
for run in range(runs):
    for cached in (False, True):
        if cached and action != "replay-cached":
            continue
        # agenttape >= 0.2 reads these; 0.1.8 ignores them (it has no parse cache).
        if cached:
            os.environ.pop("AGENTTAPE_NO_CACHE", None)
        else:
            os.environ["AGENTTAPE_NO_CACHE"] = "1"
        start = clock()
        session = agenttape.use_cassette("tools", mode="none", cassette_dir=folder)
        session.__enter__()
        loaded = clock()
        for city, day in calls:
            result = forecast(city, day)
        done = clock()
        session.__exit__(None, None, None)
        assert result["city"] == calls[-1][0], result
        out["cached_load" if cached else "load"].append(loaded - start)
        if not cached:
            out["replay"].append(done - loaded)
print(json.dumps(out))
'''


def old_python(folder: Path, *extra: str) -> Path | None:
    """An interpreter with agenttape 0.1.8 (and ``extra``) installed, or None when it
    cannot be had."""
    env_dir = folder / "-".join(["agenttape", OLD, *extra])
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"agenttape=={OLD}", *extra], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"agenttape {OLD} could not be installed from the package index; its column is "
              f"skipped.\n{result.stderr.strip()[-2000:]}", file=sys.stderr)
        return None
    return python


def run(python: Path, worker: Path, action: str, n: int, folder: Path, runs: int,
        wall: bool) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("AGENTTAPE_MODE", None)
    if wall:
        env["BENCH_WALL"] = "1"
    folder.mkdir(parents=True, exist_ok=True)
    # cwd = the cassette folder: neither version may find this repository's agenttape.toml.
    result = subprocess.run([str(python), str(worker), action, str(n), str(folder), str(runs)],
                            capture_output=True, text=True, cwd=folder, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{python} {action} failed:\n{result.stderr}")
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--sizes", default=None, help="comma-separated N (default 2000,20000)")
    p.add_argument("--runs", type=int, default=None, help="replays per version (best is kept)")
    p.add_argument("--skip-old", action="store_true", help=f"do not install agenttape {OLD}")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [1000, 5000] if args.quick else [2000, 20000])
    runs = args.runs or (2 if args.quick else 3)
    clock = "wall-clock" if args.wall else "CPU time of the worker process"
    header(f"replay of N tool calls with distinct arguments ({clock})", timing=False)

    with scratch("replay-tools") as tmp:
        worker = tmp / "worker.py"
        worker.write_text(WORKER)
        versions: dict[str, Path] = {"agenttape (this tree)": Path(sys.executable)}
        if not args.skip_old:
            # 0.1.8 depends on nothing and reads YAML with its own parser; where PyYAML is
            # installed (most environments) it reads with PyYAML's pure-Python SafeLoader.
            for label, extra in ((f"agenttape {OLD}", ()), (f"agenttape {OLD} + PyYAML",
                                                            ("pyyaml",))):
                old = old_python(tmp, *extra)
                if old is None:
                    break
                versions[label] = old
        rows = []
        summary: dict[tuple[str, int], dict[str, float]] = {}
        for n in sizes:
            for label, python in versions.items():
                folder = tmp / f"{label.replace(' ', '_').strip('()')}-{n}"
                run(python, worker, "record", n, folder, 1, args.wall)
                action = "replay-cached" if python == Path(sys.executable) else "replay"
                # PyYAML's pure-Python loader takes most of a minute per load at 20,000.
                slow = "PyYAML" in label and n >= 10000
                out = run(python, worker, action, n, folder, 1 if slow else runs, args.wall)
                load, replay = min(out["load"]), min(out["replay"])
                cached = min(out["cached_load"]) if out["cached_load"] else None
                size = (folder / "tools.yaml").stat().st_size
                summary[(label, n)] = {"load": load, "replay": replay, "cached": cached or load}
                rows.append([f"{n:,}", label, f"{size / 1e6:.2f} MB", load,
                             "-" if cached is None else f"{cached:.3g}", replay,
                             replay / n * 1e6, load + replay])
                print(f"N={n:,} {label}: load {load:.3f}s replay {replay:.3f}s", file=sys.stderr)
    print(table(["N", "version", "cassette", "load s (cold)", "load s (cached)", "replay s",
                 "µs per call", "load + replay s"], rows))
    print()
    ours = "agenttape (this tree)"
    for n in sizes:
        mine = summary[(ours, n)]
        per_call = mine["replay"] / n * 1e6
        print(f"target tool replay <= 20 µs per call at N={n:,}: {per_call:.1f} µs "
              f"{verdict(per_call <= 20)}")
        for label in (f"agenttape {OLD}", f"agenttape {OLD} + PyYAML"):
            other = summary.get((label, n))
            if other is None:
                continue
            per_old = other["replay"] / n * 1e6
            cold = (mine["load"] + mine["replay"]) / (other["load"] + other["replay"])
            warm = (mine["cached"] + mine["replay"]) / (other["load"] + other["replay"])
            print(f"  vs {label}: per call {per_call / per_old:.2f}x ({per_old:.1f} µs there); "
                  f"end to end (load + replay, target <= 0.2x) {cold:.2f}x cold "
                  f"{verdict(cold <= 0.2)}, {warm:.2f}x with the parse cache warm "
                  f"{verdict(warm <= 0.2)}")
    print(f"\nthis tree: {REPO}")


if __name__ == "__main__":
    main()
