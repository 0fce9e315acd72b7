"""The peak memory and wall time of ``cmdb import csv`` on a big synthetic inventory, into
either store: the figure behind "a 1M-CI CSV streams in bounded memory" (issue 5).

``make bench-full`` measures it into the embedded store; a Neo4j run takes a quarter of an
hour at 1M CIs, so it is its own command::

    python -m benchmarks.cli_import --cis 1000000 --relationships 1000000 \\
        --store bolt://127.0.0.1:7687            # NEO4J_PASSWORD from the environment
    python -m benchmarks.cli_import --cis 100000 --store /tmp/cmdb-embedded --json

The inventory is ``importers.generic.write_synthetic_csv`` (CIs ``h<n>`` of four classes with
serial numbers and FQDNs, relationships between them). The import runs in a child process
(``graph.sync_bench.measure_cli_import``), so only its own memory counts. The target store
should be empty: the figures are those of a first load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import orjson

from graph.sync_bench import ProcessFigures, measure_cli_import
from importers.generic import write_synthetic_csv


def measure(directory: Path, cis: int, relationships: int, store: str) -> ProcessFigures:
    """Write the synthetic CSV files into ``directory`` and time ``cmdb import csv`` of them
    into ``store`` in a child process (``make bench-full`` and :func:`main`)."""
    write_synthetic_csv(directory, cis, relationships)
    return measure_cli_import(
        ["import", "csv", str(directory), "--store", store, "--source", "synthetic"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cli_import",
        description="Time `cmdb import csv` of a synthetic inventory in its own process and "
        "report its peak resident memory (RSS).",
        epilog="example: python -m benchmarks.cli_import --cis 1000000 --relationships 1000000 "
        "--store bolt://127.0.0.1:7687",
    )
    parser.add_argument("--cis", type=int, default=1_000_000, help="CIs (default %(default)s)")
    parser.add_argument(
        "--relationships", type=int, default=None, help="relationships (default: as many as CIs)"
    )
    parser.add_argument(
        "--store", required=True, help="an empty store: a directory or a bolt:// / neo4j:// URL"
    )
    parser.add_argument("--dir", type=Path, default=None, help="where to write the CSV files")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    relationships = args.cis if args.relationships is None else args.relationships
    with tempfile.TemporaryDirectory(prefix="cli-import-") as scratch:
        figures = measure(args.dir or Path(scratch), args.cis, relationships, args.store)
    result = {
        "cis": args.cis,
        "relationships": relationships,
        "store": args.store,
        "seconds": round(figures.seconds, 1),
        "items_per_s": round((args.cis + relationships) / figures.seconds),
        "peak_rss_mib": round(figures.peak_rss_bytes / 2**20),
        "exit": figures.returncode,
    }
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(
            f"cmdb import csv of {args.cis:,} CIs + {relationships:,} relationships into "
            f"{args.store}: {figures.seconds:.0f} s ({result['items_per_s']:,} items/s), "
            f"peak RSS {result['peak_rss_mib']:,} MiB, exit {figures.returncode}"
        )
        if figures.returncode:
            print(figures.stderr[-2000:], file=sys.stderr)
    return 0 if figures.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
