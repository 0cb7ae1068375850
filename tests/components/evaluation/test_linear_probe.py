import torch

from components.evaluation.linear_probe import attribute_probes, probe_accuracy
from components.models.builders import build_vision
from components.models.config import VisionConfig


def test_probe_reads_informative_features_and_not_noise():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (400,))
    informative = torch.nn.functional.one_hot(labels, 4).float() + 0.1 * torch.randn(400, 4)
    noise = torch.randn(400, 16)
    assert probe_accuracy(informative, labels) > 0.95
    assert probe_accuracy(noise, labels) < 0.45


def test_attribute_probes_on_a_real_tower(built_dataset):
    torch.manual_seed(0)
    vision = build_vision(VisionConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2))
    metrics = attribute_probes(vision, built_dataset / "captions_train.json", built_dataset, layer=-2)
    assert set(metrics) == {"probe_colour_accuracy", "probe_shape_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
