"""Hand-built ancestry trees (the dataclasses the lineage queries return) for the dashboard's unit tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from registry.lineage import (
    AncestryNode,
    CheckpointNode,
    DatasetNode,
    EvaluationNode,
    PipelineNode,
    RecipeNode,
    StageNode,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DATA = DatasetNode("tiny-shapes", "0123456789abcdef0123456789abcdef.dir", "f" * 40, "/w/datasets/data/tiny-shapes")


def pipeline(run_id: str, recipe: str, started: datetime = T0) -> PipelineNode:
    return PipelineNode(run_id, None, "finished", "/w", started, started + timedelta(minutes=1),
                        RecipeNode(hashlib.sha256(recipe.encode()).hexdigest(), recipe, "llava"), "c" * 40)


def checkpoint(name: str, position: int, run: PipelineNode, parents: dict | None = None, models: dict | None = None,
               data: tuple[DatasetNode, ...] = (DATA,)) -> CheckpointNode:
    stage = StageNode(name, f"objective-{name}", position, "finished", f"mlflow-{run.mlflow_run_id}-{name}", 1.5, 0.25,
                      {"accuracy": 0.5}, run, data, parents or {}, models or {})
    return CheckpointNode(f"/w/runs/{name}.safetensors", "e" * 64, T0, stage, ())


def llava(version: str = "2", run_id: str = "run-2", data: DatasetNode = DATA, vision_model: AncestryNode | None = None) -> AncestryNode:
    """clip and lm -> align (vision, language_model) -> instruct (whole model) -> the model version, evaluated on the test split."""
    run = pipeline(run_id, "tiny-llava")
    lm = checkpoint("lm", 1, run, data=(data,))
    if vision_model is None:
        align = checkpoint("align", 2, run, {"vision": checkpoint("clip", 0, run, data=(data,)), "language_model": lm}, data=(data,))
    else:
        align = checkpoint("align", 2, run, {"language_model": lm}, {"vision": vision_model}, data=(data,))
    instruct = checkpoint("instruct", 3, run, {"*": align}, data=(data,))
    evaluation = EvaluationNode("test", data, {"vqa_exact_match": 0.5, "vqa_items": 18, "per_type": {"count": 1.0}}, T0)
    return AncestryNode("tiny-llava", version, "production", T0, f"mlflow-{run_id}", run, instruct, evaluation)


def clip_model() -> AncestryNode:
    """A registered CLIP version from an earlier pipeline of its own, as a parent model."""
    run = pipeline("clip-run", "tiny-clip", T0 - timedelta(days=1))
    return AncestryNode("tiny-clip", "1", "production", T0, "mlflow-clip-run", run, checkpoint("contrastive", 0, run), None)


def bootstrapped() -> AncestryNode:
    """BLIP with CapFilt: pretrain on noisy captions -> capfilt (a data stage: no checkpoint) writes a
    dataset version -> retrain reads it -> the model version."""
    run = pipeline("blip-run", "tiny-blip-capfilt")
    noisy = DatasetNode("tiny-noisy", "1" * 32 + ".dir", "a" * 40, "/w/datasets/data/tiny-noisy")
    pretrain = checkpoint("pretrain", 0, run, data=(noisy,))
    capfilt = StageNode("capfilt", "capfilt", 1, "finished", "mlflow-blip-run-capfilt", 9.0, None, {"noise_removed": 0.8},
                        run, (noisy,), {"*": pretrain}, {})
    written = DatasetNode("tiny-noisy-capfilt", "2" * 32 + ".dir", "b" * 40, "/w/datasets/data/tiny-noisy-capfilt", (capfilt,))
    return AncestryNode("tiny-blip-capfilt", "1", "candidate", T0, "mlflow-blip-run", run, checkpoint("retrain", 2, run, data=(written,)), None)
