"""The judge of generated videos reads colour, shape, size and motion from real Shapes videos."""

from pathlib import Path

import torch

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.shapes_videos import VideosConfig
from components.data.shapes_world import ShapesConfig
from components.evaluation.generation_eval import fit_judge, judge_real, scale_tag
from components.evaluation.video_judge import VideoJudge, attribute_accuracy, judge_input
from components.data.video_clips import VideoCaptionDataset


def test_the_judge_learns_real_videos_far_above_chance(tmp_path: Path):
    videos = VideosConfig(train=400, val=2, test=60, frames=(5,), canvases=((32, 32),), max_shapes=1, motions=("left", "right", "turn", "recolour"))
    build_shapes_dataset(ShapesConfig(seed=3, image_size=32, train=8, val=2, test=2), 300, tmp_path, videos=videos)
    tokenizer = load_dataset_tokenizer(tmp_path)
    train = VideoCaptionDataset(tmp_path, "train", tokenizer, 24, single_object=True)
    test = VideoCaptionDataset(tmp_path, "test", tokenizer, 24, single_object=True)
    judge = fit_judge(train, steps=250, batch_size=32, seed=0)
    accuracy = judge_real(judge, test, batch_size=32)
    # chance: colour 1/6, shape 1/4, size 1/2, motion 1/4
    assert accuracy["colour"] > 0.8 and accuracy["motion"] > 0.6 and accuracy["mean"] > 0.6, accuracy


def test_the_judge_reads_the_shape_of_a_subject_a_few_pixels_wide(tmp_path: Path):
    # a small shape is 5 px wide on these 32 px images. Mean-pooled over the frame, the judge read shape at
    # chance (0.315 on t2i_dit.yaml's images after 600 steps of 64); max-pooled, it finds the outline wherever it is
    videos = VideosConfig(train=1200, val=2, test=100, frames=(1,), canvases=((32, 32),), max_shapes=1)
    build_shapes_dataset(ShapesConfig(seed=5, image_size=32, train=8, val=2, test=2), 300, tmp_path, videos=videos)
    tokenizer = load_dataset_tokenizer(tmp_path)
    train = VideoCaptionDataset(tmp_path, "train", tokenizer, 24, single_object=True)
    test = VideoCaptionDataset(tmp_path, "test", tokenizer, 24, single_object=True)
    judge = fit_judge(train, steps=500, batch_size=32, seed=0)
    assert judge_real(judge, test, batch_size=64)["shape"] > 0.5  # chance: 0.25


def test_inputs_accuracy_and_scale_tags():
    video = torch.zeros(2, 3, 4, 8, 16)
    video[:, :, -1] = 1
    x = judge_input(video)
    assert x.shape == (2, 11, 8, 16) and torch.equal(x[:, 6:9], torch.ones(2, 3, 8, 16))  # last minus first
    assert VideoJudge({"colour": ("red", "blue")})(video)["colour"].shape == (2, 2)
    read = [{"colour": "red", "shape": "square"}, {"colour": "blue", "shape": "circle"}]
    wanted = [{"colour": "red", "shape": "circle"}, {"colour": "blue", "shape": "circle"}]
    assert attribute_accuracy(read, wanted, ("colour", "shape")) == {"colour": 1.0, "shape": 0.5, "mean": 0.75}
    assert [scale_tag(s) for s in (1.0, 3, 2.5)] == ["g1", "g3", "g2p5"]
