"""How much does factorised space / time attention save over full attention in the diffusion transformer?

Full attention over a clip's spacetime patches costs (T * P)^2 per block for T latent frames of P patches;
alternating attention within each frame and across frames at each place costs T * P^2 + P * T^2. This script
builds video_dit.yaml's transformer both ways (the same widths and depth; only `attention` differs) and times
full training steps (forward, backward, AdamW) on random latents at 1, 3 and 5 latent frames (an image, 5- and
9-frame clips), alternating the two in rounds so that a machine that speeds up or slows down touches both alike.

It prints the median step time each way and the ratio factorised / full per duration (below 1: factorised is
faster) and writes the figures with the machine they were taken on to --out as JSON. It exits 0 whatever the
timings: it is a measurement, not a test.

    python benchmarks/dit_attention.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
WARMUP_STEPS = 2
sys.path.insert(0, str(ROOT))

from components.models.diffusion.dit import Caption, DiffusionTransformer  # noqa: E402
from mmops.recipe import load_recipe  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "video_dit.yaml"))
    parser.add_argument("--latent-frames", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round, way and duration")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dit_attention.json"))
    return parser.parse_args(argv)


def step_seconds(model: DiffusionTransformer, latents: torch.Tensor, caption: Caption, optimizer, steps: int) -> list[float]:
    seconds = []
    for i in range(WARMUP_STEPS + steps):
        start = time.perf_counter()
        t = torch.randint(0, 1000, (len(latents),))
        loss = (model(latents, t, caption) - latents).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= WARMUP_STEPS:
            seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    recipe = load_recipe(Path(args.recipe)).recipe
    diffusion, autoencoder = recipe.model.diffusion, recipe.model.video_autoencoder
    channels, side = autoencoder.latent_channels, 32 // autoencoder.downsample
    torch.manual_seed(0)
    models = {way: DiffusionTransformer(diffusion.dit.model_copy(update={"attention": way}), channels, recipe.model.clip_embed_dim,
                                        recipe.model.text_encoder.dim) for way in ("full", "factorised")}
    optimizers = {way: torch.optim.AdamW(m.parameters(), lr=1e-4) for way, m in models.items()}
    caption = Caption(torch.randn(args.batch, recipe.model.clip_embed_dim), torch.randn(args.batch, 12, recipe.model.text_encoder.dim),
                      torch.ones(args.batch, 12, dtype=torch.bool))
    times: dict[int, dict[str, list[float]]] = {T: {"full": [], "factorised": []} for T in args.latent_frames}
    for _ in range(args.rounds):
        for T in args.latent_frames:
            latents = torch.randn(args.batch, channels, T, side, side)
            for way in ("full", "factorised"):
                times[T][way] += step_seconds(models[way], latents, caption, optimizers[way], args.steps)
    patches = (side // diffusion.dit.patch_size) ** 2
    rows = []
    print(f"{'latent frames':>13} {'tokens':>7} {'full ms':>9} {'factorised ms':>14} {'factorised / full':>18}")
    for T in args.latent_frames:
        full, fact = statistics.median(times[T]["full"]), statistics.median(times[T]["factorised"])
        rows.append({"latent_frames": T, "tokens": T * patches, "full_s": full, "factorised_s": fact, "ratio": fact / full})
        print(f"{T:>13} {T * patches:>7} {full * 1000:>9.1f} {fact * 1000:>14.1f} {fact / full:>18.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    out.write_text(json.dumps({"recipe": args.recipe, "batch": args.batch, "rows": rows, "machine": machine}, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
