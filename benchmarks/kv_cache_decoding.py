"""Is our decoding as fast as transformers'? KV-cached greedy decoding with our decoder (components.models.greedy over
DecoderLM, the LM of the LLaVA-style families) against HF transformers' `generate` (greedy, with its cache) on a Llama
of the same sizes: width, depth, heads, SwiGLU width, vocabulary, attention biases, RMSNorm and rotary positions.

Both decode the same batch of prompts for exactly the same number of new tokens (no end-of-sequence stops either
early), alternating in rounds after an untimed warm-up. It prints tokens/s each way, the ratio HF time / our time
(goal >= 1.0: ours at least as fast), and our decoding without the cache for scale, and writes them to
benchmarks/results/kv_cache_decoding.json. A measurement, not a test: it exits 0 whatever the figures.

    python benchmarks/kv_cache_decoding.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import verdict, write_figures  # noqa: E402
from components.models.config import LanguageModelConfig  # noqa: E402
from components.models.greedy import greedy_decode  # noqa: E402
from components.models.language_model import DecoderLM  # noqa: E402
from mmops.recipe import load_recipe  # noqa: E402

GOAL = 1.0
NEVER = -1
"""An end-of-sequence id no token has: both ways decode every new token asked for."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "llava.yaml"), help="its language model's sizes and vocabulary")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--prompt", type=int, default=96, help="prompt tokens (a LLaVA prompt: image tokens and a question)")
    parser.add_argument("--new", type=int, default=32, help="new tokens per prompt")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


def hf_llama(cfg: LanguageModelConfig, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab, hidden_size=cfg.dim, intermediate_size=cfg.mlp_hidden, num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads, max_position_embeddings=cfg.max_seq_len,
        rms_norm_eps=1e-6, rope_theta=cfg.rope_theta, attention_bias=True, tie_word_embeddings=False, attn_implementation="sdpa",
        pad_token_id=0, bos_token_id=None, eos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


def ours(model: DecoderLM, ids: torch.Tensor, new: int, use_cache: bool = True) -> float:
    mask = torch.ones_like(ids)
    positions = torch.arange(ids.shape[1]).expand_as(ids)

    def run(embeds, attention_mask, position_ids, cache):
        return model(embeds, attention_mask, position_ids, cache, use_cache=use_cache)

    start = time.perf_counter()
    generated = greedy_decode(run, model.embed, model.embed(ids), mask, positions, new, NEVER, use_cache=use_cache)
    seconds = time.perf_counter() - start
    assert all(len(g) == new for g in generated)
    return seconds


def transformers_generate(model, ids: torch.Tensor, new: int) -> float:
    start = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                         do_sample=False, use_cache=True, pad_token_id=0)
    seconds = time.perf_counter() - start
    assert out.shape[1] == ids.shape[1] + new
    return seconds


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    recipe = load_recipe(args.recipe).recipe
    cfg, vocab = recipe.model.language_model, recipe.data.tokenizer.vocab_size
    torch.manual_seed(0)
    model, reference = DecoderLM(cfg, vocab).eval(), hf_llama(cfg, vocab)
    sizes = {"ours": sum(p.numel() for p in model.parameters()), "transformers": sum(p.numel() for p in reference.parameters())}
    if sizes["ours"] != sizes["transformers"]:
        raise SystemExit(f"the two models differ in size: {sizes}")
    ids = torch.randint(1, vocab, (args.batch, args.prompt), generator=torch.Generator().manual_seed(1))
    ways = [("ours", lambda: ours(model, ids, args.new)), ("transformers", lambda: transformers_generate(reference, ids, args.new))]
    for _, run in ways:
        run()  # warm-up: first calls allocate and pick kernels
    times: dict[str, list[float]] = {"ours": [], "transformers": []}
    for r in range(args.rounds):
        for way, run in ways if r % 2 == 0 else ways[::-1]:
            times[way].append(run())
    uncached = ours(model, ids, args.new, use_cache=False)
    medians = {way: statistics.median(t) for way, t in times.items()}
    tokens = args.batch * args.new
    ratio = medians["transformers"] / medians["ours"]
    print(f"greedy decoding, {Path(args.recipe).name}'s LM ({sizes['ours'] / 1e6:.2f} M parameters), batch {args.batch}, "
          f"{args.prompt} prompt + {args.new} new tokens, {args.rounds} rounds")
    for way, median in medians.items():
        print(f"  {way:13s} median {1000 * median:8.1f} ms  {tokens / median:8.0f} new tokens/s")
    print(f"  ours without the cache  {1000 * uncached:8.1f} ms")
    print(f"  transformers / ours: {verdict(ratio, GOAL, at_most=False)}")
    write_figures("kv_cache_decoding", {
        "what": f"KV-cached greedy decoding vs transformers' generate on a Llama of the same sizes ({Path(args.recipe).name})",
        "parameters": sizes["ours"], "batch": args.batch, "prompt_tokens": args.prompt, "new_tokens": args.new,
        "median_ms": {way: round(1000 * m, 2) for way, m in medians.items()}, "ours_without_cache_ms": round(1000 * uncached, 2),
        "ratio": round(ratio, 4), "goal": GOAL, "at_most": False,
    }, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
