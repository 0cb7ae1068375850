import json
from pathlib import Path

import pytest
import torch

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.llava_json import ImageTextDataset
from components.data.shapes_world import ShapesConfig
from components.inference.capfilt import CapFiltConfig, capfilt
from components.models.builders import build_blip
from components.models.config import MedConfig, VisionConfig


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("noisy") / "shapes"
    build_shapes_dataset(ShapesConfig(seed=4, image_size=32, train=24, val=2, test=2, max_shapes=2, caption_noise=0.4), 320, out)
    return out


def model_for(tokenizer):
    torch.manual_seed(0)
    vision = VisionConfig(image_size=32, patch_size=8, dim=32, depth=1, heads=2)
    return build_blip(vision, MedConfig(dim=32, depth=1, heads=2, max_text_len=48), tokenizer.vocab_size, tokenizer.pad_id, 16)


def run(noisy: Path, threshold: float):
    tokenizer = load_dataset_tokenizer(noisy)
    samples = json.loads((noisy / "captions_train.json").read_text())
    cfg = CapFiltConfig(threshold=threshold, max_tokens=8, batch_size=10)
    return samples, *capfilt(model_for(tokenizer), tokenizer, samples, noisy, 32, cfg)


def test_the_filter_threshold_decides_what_is_kept(noisy: Path):
    samples, everything, stats = run(noisy, threshold=0.0)
    synthetic = [s for s in everything if s.get("caption_synthetic")]
    assert stats["kept_original"] == 1.0 and len(everything) == len(samples) + len(synthetic)
    assert stats["kept_synthetic"] == len(synthetic) / len(samples)
    assert {"noise_removed", "clean_kept"} <= stats.keys() and stats["noise_removed"] == 0.0 and stats["clean_kept"] == 1.0
    _, nothing, none = run(noisy, threshold=1.0)  # an untrained head is never that sure
    assert nothing == [] and none["kept_original"] == none["kept_synthetic"] == 0.0 and none["noise_removed"] == 1.0


def test_the_bootstrapped_corpus_is_a_captions_file_a_stage_can_read(noisy: Path, tmp_path: Path):
    samples, kept, _ = run(noisy, threshold=0.0)
    synthetic = next(s for s in kept if s.get("caption_synthetic"))
    assert synthetic["id"].endswith("-capfilt") and synthetic["image"] in {s["image"] for s in samples}
    assert "hard_negatives" not in synthetic and "caption_noisy" not in synthetic
    path = tmp_path / "captions_train.json"
    path.write_text(json.dumps(kept))
    dataset = ImageTextDataset(path, noisy, load_dataset_tokenizer(noisy), 32, 48)
    assert len(dataset) == len(kept) and dataset.negatives is None
