"""Every benchmark with a goal, one after another, then one table of their ratios against the goals.

    python benchmarks/run_all.py            # the sizes the README's table was measured at
    python benchmarks/run_all.py --quick    # small sizes: minutes, for a first look (ratios of fixed costs dominate)

Each benchmark writes its own JSON to benchmarks/results/; this prints them together and writes
benchmarks/results/summary.json. A measurement, not a test: it exits 0 whatever the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import data_loader, dataset_versioning, kv_cache_decoding, lightning_step, lineage_ancestry, pipeline_overhead  # noqa: E402
from benchmarks.figures import RESULTS, machine  # noqa: E402

BENCHMARKS = {
    "lightning_step": (lightning_step.main, [], ["--steps", "8", "--rounds", "2", "--scenes", "300"]),
    "data_loader": (data_loader.main, [], ["--scenes", "500", "--rounds", "2"]),
    "dataset_versioning": (dataset_versioning.main, [], ["--scenes", "500", "--rounds", "2"]),
    "kv_cache_decoding": (kv_cache_decoding.main, [], ["--batch", "8", "--rounds", "2"]),
    "pipeline_overhead": (pipeline_overhead.main, [], ["--recipe", str(ROOT / "tests" / "e2e" / "tiny_llava.yaml")]),
    "lineage_ancestry": (lineage_ancestry.main, [], ["--runs", "2000", "--samples", "20"]),
}


def markdown_table(rows: list[dict]) -> str:
    lines = ["| benchmark | measures | ratio | goal | met |", "|---|---|---|---|---|"]
    lines += [f"| `{r['benchmark']}` | {r['what']} | {r['ratio']:.3f} | {r['goal']} | {'yes' if r['meets_goal'] else 'no'} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a first look")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run these alone")
    args = parser.parse_args(argv)
    rows = []
    for name, (run, full, quick) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        run(quick if args.quick else full)
        figures = json.loads((RESULTS / f"{name}.json").read_text())
        goal = figures.get("goal_text") or f"{'<=' if figures['at_most'] else '>='} {figures['goal']}"
        rows.append({"benchmark": name, "what": figures["what"], "ratio": figures["ratio"], "goal": goal,
                     "meets_goal": figures["meets_goal"], "seconds": round(time.perf_counter() - start, 1)})
    print(f"\n{'benchmark':20s} {'ratio':>8s}  {'goal':32s} met")
    for row in rows:
        print(f"{row['benchmark']:20s} {row['ratio']:8.3f}  {row['goal']:32s} {'yes' if row['meets_goal'] else 'no'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps({"quick": args.quick, "rows": rows, "machine": machine()}, indent=1))
    (RESULTS / "summary.md").write_text(markdown_table(rows))
    print(f"\nas a Markdown table (for the README): {RESULTS / 'summary.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
