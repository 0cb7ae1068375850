"""What does versioning a dataset cost over reading it once? mmops's versioning of a written dataset (the files
into a fresh folder by hard link, `dvc add` hashing every file, the git commit, the push to a local DVC remote:
registry.data_repo.version_written_dataset) against `md5sum` over the same files.

Each round versions the dataset into a new, empty repository, so DVC hashes every file each time; md5sum reads the
same files with the page cache as warm. It prints both times and the ratio versioning / md5sum (goal <= 1.5) and
writes them to benchmarks/results/dataset_versioning.json. A measurement, not a test: it exits 0 whatever the figures.

    python benchmarks/dataset_versioning.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import verdict, write_figures  # noqa: E402
from components.data.shapes_dataset import generate_shapes_dataset  # noqa: E402
from components.data.shapes_world import ShapesConfig  # noqa: E402
from registry.data_repo import DvcRemote, version_written_dataset  # noqa: E402

GOAL = 1.5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


def md5sum_seconds(folder: Path) -> float:
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    start = time.perf_counter()
    for first in range(0, len(files), 2000):  # within the argument limit
        subprocess.run(["md5sum", *files[first : first + 2000]], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def versioning_seconds(source: Path, scratch: Path) -> float:
    def write(out: Path) -> None:
        for path in source.rglob("*"):
            target = out / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                os.link(path, target)

    start = time.perf_counter()
    version_written_dataset(scratch / "repo", DvcRemote(str(scratch / "remote")), "bench", write, "benchmark")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "shapes"
        generate_shapes_dataset(ShapesConfig(train=args.scenes, val=8, test=8), source)
        count = sum(1 for p in source.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
        md5sum_seconds(source)  # the page cache, for both
        times: dict[str, list[float]] = {"versioning": [], "md5sum": []}
        for r in range(args.rounds):
            times["versioning"].append(versioning_seconds(source, Path(folder) / f"round-{r}"))
            times["md5sum"].append(md5sum_seconds(source))
    medians = {way: statistics.median(t) for way, t in times.items()}
    ratio = medians["versioning"] / medians["md5sum"]
    print(f"{count} files, {size / 2**20:.1f} MiB, {args.rounds} rounds")
    for way, seconds in medians.items():
        print(f"  {way:10s} {seconds:8.2f} s")
    print(f"  versioning / md5sum: {verdict(ratio, GOAL, at_most=True)}")
    write_figures("dataset_versioning", {
        "what": f"versioning a dataset (hard links, dvc add, git commit, push) vs md5sum over the same {count} files",
        "seconds": {way: round(t, 3) for way, t in medians.items()}, "files": count, "bytes": size,
        "ratio": round(ratio, 4), "goal": GOAL, "at_most": True,
    }, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
