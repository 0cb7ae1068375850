"""Evaluating a text-to-video model: held-out denoising loss, and how often its samples show what was asked.

The judge (evaluation.video_judge) trains on the real train videos of one
object and reads the real test videos: its accuracy there is the ceiling.
Then the model generates a video for each test caption, at the test video's
own size (the noise grid chooses it), once per guidance scale with the same
noise, and the judge reads the samples. It also reads the autoencoder's reconstructions of the
real test videos: the most a sample decoded from latents can show. Reported per scale: the share of
samples right in each attribute (those with more than one value among the
train videos: an image's motion is always `still`) and their mean;
`generation_ratio` is the best scale's mean over the ceiling, and
`guidance_gain` what the best guided scale adds over scale 1 (the
conditional model without guidance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from components.data.llava_json import encode_caption
from components.data.prompt_expansion import expand_prompt
from components.data.tokenizer import TextTokenizer
from components.data.video_clips import SizeBucketBatchSampler, VideoCaptionDataset, video_frames
from components.evaluation.metric_names import scale_tag
from components.evaluation.video_judge import JUDGED, VideoJudge, attribute_accuracy, train_judge
from components.models.diffusion.sampling import SamplingConfig
from components.models.diffusion.text_to_video import TextToVideo

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GenerationSamples:
    """What previews show: per guidance scale, each previewed caption's sample as uint8 frames (T, H, W, 3)."""

    captions: list[str]
    videos: dict[float, list[np.ndarray]] = field(default_factory=dict)
    real: list[np.ndarray] = field(default_factory=list)


def size_batches(dataset: VideoCaptionDataset, batch_size: int, seed: int) -> SizeBucketBatchSampler:
    """Batches of one size each; every pass over the sampler is a new shuffle of the seeded stream."""
    return SizeBucketBatchSampler([dataset.size(i) for i in range(len(dataset))], batch_size, torch.Generator().manual_seed(seed))


def _videos(dataset: VideoCaptionDataset, indices: list[int]) -> Tensor:
    return torch.stack([dataset[i]["video"] for i in indices])


def fit_judge(train: VideoCaptionDataset, steps: int, batch_size: int, seed: int, progress: Progress | None = None) -> VideoJudge:
    torch.manual_seed(seed)
    values = {a: tuple(sorted({lab[a] for lab in train.labels})) for a in JUDGED}
    judge = VideoJudge({a: v for a, v in values.items() if len(v) > 1})  # one value (images' motion) is nothing to judge

    sampler = size_batches(train, batch_size, seed)

    def batches():
        for indices in sampler:
            yield _videos(train, indices), [train.labels[i] for i in indices]

    train_judge(judge, batches, steps, progress=(lambda d, t: progress("judge", d, t)) if progress else None)
    return judge


def judge_real(judge: VideoJudge, test: VideoCaptionDataset, batch_size: int, through: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
    """The judge's accuracy on the real test videos, or on what `through` makes of them (the autoencoder's
    reconstructions: the most a sample decoded from latents can show)."""
    read: list[dict[str, str]] = []
    wanted: list[dict[str, str]] = []
    for indices in size_batches(test, batch_size, 0):
        videos = _videos(test, indices)
        read += judge.read(through(videos) if through is not None else videos)
        wanted += [test.labels[i] for i in indices]
    return attribute_accuracy(read, wanted, judge.classes)


def reconstruct(model: TextToVideo) -> Callable[[Tensor], Tensor]:
    """Videos (B, 3, T, H, W) in [-1, 1] through the model's autoencoder and back, clamped as samples are."""
    autoencoder = model.autoencoder

    def through(videos: Tensor) -> Tensor:
        with torch.no_grad():
            return autoencoder.decode(autoencoder.encode(videos)).clamp(-1.0, 1.0)

    return through


def generation_metrics(
    model: TextToVideo, tokenizer: TextTokenizer, dataset_dir: Path, scales: tuple[float, ...], sampling: SamplingConfig, limit: int,
    judge_steps: int, batch_size: int, seed: int, previews: int = 6, progress: Progress | None = None, expand: bool = False,
    split: str = "test",
) -> tuple[dict[str, float], GenerationSamples, list[dict]]:
    """Metrics, the preview samples, and one record per generated sample (caption, prompt, size, scale, wanted and read).
    `expand`: each short test caption is expanded into a descriptive one for the size generated (a re-captioned model's
    prompts, components.data.prompt_expansion). `split`: the captions and real videos measured ("test" in the
    pipeline; "val" to choose sampling settings without looking at the test split)."""
    max_len = model.max_text_len
    train = VideoCaptionDataset(dataset_dir, "train", tokenizer, max_len, single_object=True)
    held_out = VideoCaptionDataset(dataset_dir, split, tokenizer, max_len, single_object=True)
    judge = fit_judge(train, judge_steps, batch_size, seed, progress)
    real = judge_real(judge, held_out, batch_size)
    metrics = {f"real_{a}_accuracy": v for a, v in real.items() if a != "mean"} | {"real_accuracy": real["mean"]}
    reconstructed = judge_real(judge, held_out, batch_size, reconstruct(model))
    metrics |= {f"reconstructed_{a}_accuracy": v for a, v in reconstructed.items() if a != "mean"} | {"reconstructed_accuracy": reconstructed["mean"]}

    chosen = list(range(min(limit, len(held_out))))
    prompts = {i: held_out.caption_texts[i] for i in chosen}
    if expand:
        for i in chosen:
            frames, height, width = held_out.size(i)
            prompts[i] = expand_prompt(prompts[i], frames, width, height)
    prompt_ids = {i: encode_caption(tokenizer, prompts[i], max_len) for i in chosen}
    samples = GenerationSamples([held_out.caption_texts[i] for i in chosen[:previews]])
    samples.real.extend(video_frames(held_out[i]["video"]) for i in chosen[:previews])
    by_size: dict[tuple[int, int, int], list[int]] = {}
    for i in chosen:
        by_size.setdefault(held_out.size(i), []).append(i)
    records: list[dict] = []
    done, total = 0, len(chosen) * len(scales)
    for scale in scales:
        config = sampling.model_copy(update={"guidance": scale})
        read: dict[int, dict[str, str]] = {}
        generated: dict[int, np.ndarray] = {}
        for size, indices in by_size.items():
            for start in range(0, len(indices), batch_size):
                part = indices[start : start + batch_size]
                ids = pad_sequence([torch.tensor(prompt_ids[i]) for i in part], batch_first=True, padding_value=tokenizer.pad_id)
                mask = pad_sequence([torch.ones(len(prompt_ids[i]), dtype=torch.long) for i in part], batch_first=True)
                generator = torch.Generator().manual_seed(seed + part[0])  # the same noise at every scale
                videos = model.generate(ids, mask, size, config, generator)
                for i, seen, video in zip(part, judge.read(videos), videos):
                    read[i] = seen
                    if i < previews:
                        generated[i] = video_frames(video)
                done += len(part)
                if progress is not None:
                    progress("generate", done, total)
        scores = attribute_accuracy([read[i] for i in chosen], [held_out.labels[i] for i in chosen], judge.classes)
        tag = scale_tag(scale)
        metrics |= {f"generation_{a}_accuracy_{tag}": v for a, v in scores.items() if a != "mean"} | {f"generation_accuracy_{tag}": scores["mean"]}
        samples.videos[scale] = [generated[i] for i in chosen[:previews]]
        records += [
            {"caption": held_out.caption_texts[i], "prompt": prompts[i], "size": list(held_out.size(i)), "guidance": scale,
             "wanted": held_out.labels[i], "read": read[i]}
            for i in chosen
        ]
    accuracies = {s: metrics[f"generation_accuracy_{scale_tag(s)}"] for s in scales}
    best = max(accuracies.values())
    metrics["generation_accuracy"] = best
    metrics["generation_ratio"] = best / max(metrics["real_accuracy"], 1e-9)
    if 1.0 in accuracies and len(accuracies) > 1:
        metrics["guidance_gain"] = max(v for s, v in accuracies.items() if s != 1.0) - accuracies[1.0]
    metrics["generation_items"] = float(len(chosen))
    return metrics, samples, records
