"""``export``: a cassette as plain JSON, or as an OTLP/JSON trace for any OTel backend."""

from __future__ import annotations

import argparse
import json

from ._common import load, write_output

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", parents=[common],
                       help="write a cassette as JSON or as an OTLP/JSON trace",
                       description="json: the cassette's structure as JSON. otel: an OTLP/JSON "
                       "trace (POST it to a collector's /v1/traces) with one span per "
                       "interaction and the GenAI semantic conventions.")
    p.add_argument("cassette", metavar="CASSETTE")
    p.add_argument("--format", dest="fmt", choices=("json", "otel"), required=True)
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    path, cassette = load(args.cassette)
    if args.fmt == "json":
        document = cassette.to_dict()
    else:
        from ._otel import to_otlp

        document = to_otlp(cassette, name=path.name)
    write_output(json.dumps(document, indent=2, ensure_ascii=False, default=str), args.output)
    return 0
