"""What ``import agenttape`` adds to a bare interpreter start.

Runs ``python -c pass`` and ``python -c "import agenttape"`` alternately as subprocesses
and compares the medians (wall-clock, and the children's CPU time from
``resource.getrusage``). Also lists agenttape's own modules by cumulative import time
(``-X importtime``) and checks that no heavy dependency is imported.

    .venv/bin/python benchmarks/import_time.py [--quick] [--runs 31]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

from _common import header, median, parser, table, verdict

HEAVY = ("httpx", "httpx2", "requests", "yaml", "cattrs", "attrs", "pytest", "openai", "json",
         "typing", "re")


def once(code: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PYTHONSTARTUP", "PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE"):
        env.pop(key, None)
    return env


def importtime() -> list[tuple[str, int]]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import agenttape"],
                            capture_output=True, text=True, check=True, env=_env())
    rows = []
    for line in result.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            rows.append((parts[2], int(parts[1])))
    return rows


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=None, help="subprocesses of each kind")
    args = p.parse_args()
    runs = args.runs or (11 if args.quick else 31)
    header("import agenttape vs python -c pass (medians of alternating subprocesses)",
           timing=False)

    # Warm the file cache and the bytecode cache first.
    once("import agenttape")
    bare, loaded = [], []
    for _ in range(runs):
        bare.append(once("pass"))
        loaded.append(once("import agenttape"))
    rows = []
    for label, i in (("wall-clock", 0), ("CPU (user + sys)", 1)):
        b, a = median([s[i] for s in bare]), median([s[i] for s in loaded])
        rows.append([label, b * 1e3, a * 1e3, (a - b) * 1e3])
    print(table(["median of " + str(runs), "python -c pass ms", "import agenttape ms",
                 "added ms"], rows))
    print()
    added = rows[0][3]
    print(f"target import agenttape adds < 10 ms: {added:.1f} ms wall-clock "
          f"{verdict(added < 10)}")

    probe = ("import sys, agenttape; "
             f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, env=_env()).stdout.strip()
    print(f"heavy modules imported by `import agenttape`: {found or 'none'} "
          f"(checked: {', '.join(HEAVY)})")
    ours = sorted((r for r in importtime() if r[0].startswith("agenttape")),
                  key=lambda r: -r[1])
    print("agenttape modules imported, cumulative µs: "
          + ", ".join(f"{name} {us:,}" for name, us in ours))


if __name__ == "__main__":
    main()
