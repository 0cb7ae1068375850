"""A recipe stage's dataset on a freshly generated Shapes world of a chosen size, in a temporary folder: what the
benchmarks that train or load like a stage read."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.tokenizer import TextTokenizer
from components.training.stage_data import build_stage_dataset
from mmops.recipe import Recipe, StageConfig


@contextmanager
def shapes_stage_data(recipe: Recipe, stage: StageConfig, scenes: int) -> Iterator[tuple[Path, TextTokenizer, object]]:
    """(dataset folder, its tokenizer, the stage's torch Dataset) for `scenes` training scenes; the folder goes afterwards."""
    shapes = recipe.data.shapes.model_copy(update={"train": scenes, "val": 8, "test": 8})
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        build_shapes_dataset(shapes, recipe.data.tokenizer.vocab_size, data)
        tokenizer = load_dataset_tokenizer(data)
        yield data, tokenizer, build_stage_dataset(stage.objective, data, tokenizer, recipe.model.vision.image_size, stage.max_len)
