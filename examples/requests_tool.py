"""A tool that calls an HTTP API with requests, through `agenttape.requests_session()`.

    python examples/requests_tool.py            # replay: the rates service is not running
    python examples/requests_tool.py --record   # start a local rates service and re-record

`fetch_rates` is a plain function: the HTTP call it makes is the recorded boundary (kind
`http`, boundary `127.0.0.1:8765`), so the cassette shows the exact request and JSON answer.
Decorating `fetch_rates` with `@agenttape.tool` would record its return value instead and
let the request inside pass through unrecorded — the outermost boundary wins.

The session is created once, like an app would: it sends for real outside an agenttape
session and records or replays inside one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import agenttape

ROOT = Path(__file__).resolve().parent.parent
CASSETTE_DIR = ROOT / "cassettes" / "examples"
CASSETTE = "requests_tool"
# The rates API's address is part of each recorded request (and the boundary's name), so
# replay must use the address the cassette was recorded with — like a real service's URL.
DEFAULT_RATES_URL = "http://127.0.0.1:8765"


def rates_url() -> str:
    return os.environ.get("RATES_API_URL", DEFAULT_RATES_URL)

http = agenttape.requests_session()
served: list[str] = []  # requests the rates service really received


def fetch_rates(base: str) -> dict[str, float]:
    """The tool: today's exchange rates for `base`, from the rates API."""
    response = http.get(f"{rates_url()}/v1/latest", params={"base": base}, timeout=10)
    response.raise_for_status()
    rates: dict[str, float] = response.json()["rates"]
    return rates


def price_basket(total_eur: float, currencies: list[str]) -> dict[str, float]:
    """The agent step using the tool: the basket's price in a few currencies."""
    rates = fetch_rates("EUR")
    return {currency: round(total_eur * rates[currency], 2) for currency in currencies}


@contextmanager
def rates_service(url: str) -> Iterator[None]:
    """A tiny stand-in for a real exchange-rates API, for recording."""

    class Handler(BaseHTTPRequestHandler):
        def version_string(self) -> str:
            return "rates-api/1.0"  # not Python's version: re-records stay identical

        def do_GET(self) -> None:
            served.append(self.path)
            query = parse_qs(urlsplit(self.path).query)
            body = json.dumps({
                "base": query.get("base", ["EUR"])[0],
                "rates": {"USD": 1.0842, "GBP": 0.8531, "JPY": 163.27},
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    parts = urlsplit(url)
    server = ThreadingHTTPServer((parts.hostname or "127.0.0.1", parts.port or 80), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run(mode: str, cassette_dir: Path = CASSETTE_DIR) -> tuple[dict[str, float], agenttape.Session]:
    """Price the basket once inside a session; returns the prices and the session."""
    config = agenttape.Config.load(ROOT)  # the repository's agenttape.toml, whatever the cwd
    with agenttape.use_cassette(CASSETTE, mode=mode, config=config,
                                cassette_dir=cassette_dir) as session:
        prices = price_basket(59.0, ["USD", "GBP"])
    return prices, session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="re-record the cassette")
    args = parser.parse_args(argv)
    if args.record:
        with rates_service(rates_url()):
            prices, session = run("record")
        print(f"recorded {session.path}")
    else:
        prices, session = run("none")
    assert session.engine is not None
    print(f"prices: {prices}")
    print(f"{session.engine.replayed} replayed, {session.engine.live_count} live; "
          f"requests the rates service received: {len(served)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
