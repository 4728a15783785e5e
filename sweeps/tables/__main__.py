"""``python -m sweeps.tables [--check <papers dir>]``: list the registered tables; check their numbers."""

from __future__ import annotations

from sweeps.tables import TABLES, check_transcription


def main(argv: list[str] | None = None) -> int:
    """``python -m sweeps.tables [--check <papers dir>]``: list the tables; check transcriptions."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m sweeps.tables", description=main.__doc__)
    parser.add_argument(
        "--check", type=Path, default=None, help="folder of <paper>.txt to check the numbers against"
    )
    args = parser.parse_args(argv)
    problems: list[str] = []
    for table in TABLES.values():
        wired = sum(row.match is not None for row in table.rows)
        sweeps = sorted({s for s in (table.sweep, *(r.sweep for r in table.rows)) if s})
        print(
            f"{table.name:14s} {table.paper:8s} {table.number:9s} rows {wired}/{len(table.rows)} wired  "
            f"sweeps {', '.join(sweeps) or '-'}  | {table.title}"
        )
        if args.check is not None:
            problems += check_transcription(
                table, (args.check / f"{table.paper}.txt").read_text(encoding="utf-8")
            )
    for problem in problems:
        print(f"MISMATCH {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
