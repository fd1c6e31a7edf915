"""Chatroom beside the reference server: the same numbers from two ``sse_load.py --json`` files, and their ratio.

    python bench/compare.py APP.json REFERENCE.json             print the table
    python bench/compare.py --combine OUT.json APP.json REF.json   write {"app": ..., "reference": ...}

``bench/run.sh`` calls both. The issue's bar: CPU per delivered message at most 1.3× the reference.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

CPU_RATIO_TARGET = 1.3

ROWS: list[tuple[str, Callable[[dict[str, Any]], float | None], str]] = [
    ("server CPU per delivered message", lambda r: r["server"]["cpu_us_per_delivered"], "µs"),
    ("RSS per idle stream", lambda r: r["server"]["rss_kb_per_idle_stream"], "KB"),
    ("latency p50", lambda r: r["latency_ms"]["p50"], "ms"),
    ("latency p99", lambda r: r["latency_ms"]["p99"], "ms"),
    ("first → last stream p99", lambda r: r["fanout_spread_ms"]["p99"], "ms"),
    ("POST p99", lambda r: r["posted"]["post_ms"]["p99"], "ms"),
    ("load tool loop lag p99", lambda r: r["load_tool"]["loop_lag_ms"]["p99"], "ms"),
    ("streams open", lambda r: r["streams"]["open"], ""),
    (
        "lost + duplicated + out of order",
        lambda r: r["delivered"]["lost"] + r["delivered"]["duplicates"] + r["delivered"]["out_of_order"],
        "",
    ),
]


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def table(app: dict[str, Any], ref: dict[str, Any]) -> str:
    """The side-by-side table, with the CPU ratio judged against ``CPU_RATIO_TARGET``."""
    c = app["config"]
    lines = [
        f"Chatroom vs the reference (K={c['clients']}, {c['members']} members, "
        f"R={c['rate']:g}/s for {c['duration']:g} s)",
        f"  {'':<34} {'chatroom':>10} {'reference':>10} {'ratio':>7}",
    ]
    for name, get, unit in ROWS:
        try:
            a, r = get(app), get(ref)
        except (KeyError, TypeError):
            continue
        ratio = f"{a / r:.2f}x" if a is not None and r else "n/a"
        lines.append(f"  {name:<34} {_show(a):>10} {_show(r):>10} {ratio:>7}  {unit}")
    a, r = app["server"]["cpu_us_per_delivered"], ref["server"]["cpu_us_per_delivered"]
    if a and r:
        verdict = "ok  " if a / r <= CPU_RATIO_TARGET else "MISS"
        lines.append(f"  {verdict} CPU per delivery {a / r:.2f}x the reference (limit {CPU_RATIO_TARGET:g}x)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--combine"]:
        out, *paths = argv[1:]
        combined = {
            name: json.loads(Path(path).read_text())
            for name, path in zip(("app", "reference"), paths, strict=False)
            if Path(path).exists()
        }
        Path(out).write_text(json.dumps(combined, indent=2) + "\n")
        return 0
    app_path, ref_path = argv
    if not Path(ref_path).exists():
        print("the reference run wrote no results", file=sys.stderr)
        return 1
    print()
    print(table(json.loads(Path(app_path).read_text()), json.loads(Path(ref_path).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
