"""`mmops lineage`: a model version's ancestry as an indented tree for people (JSON for machines)."""

from __future__ import annotations

import re

from mmops.errors import MmopsError
from registry.lineage import AncestryNode, CheckpointNode, StageNode

_REFERENCE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[0-9]+))$")


def parse_reference(text: str) -> tuple[str, str | None, str | None]:
    """'NAME@ALIAS' or 'NAME/VERSION' -> (name, alias, version)."""
    match = _REFERENCE.match(text)
    if match is None:
        raise MmopsError(f"model reference {text!r}: expected NAME@ALIAS (e.g. shapes-llava@production) or NAME/VERSION (e.g. shapes-llava/2)")
    return match["name"], match["alias"], match["version"]


def render_ancestry(root: AncestryNode) -> list[str]:
    lines = [f"{root.name} v{root.version} [{root.status}]  created {root.created_at:%Y-%m-%d %H:%M}"]
    pipeline = root.pipeline
    lines.append(f"  recipe {pipeline.recipe.name} ({pipeline.recipe.family}) sha256 {pipeline.recipe.sha256[:12]}  code {pipeline.code_version[:12]}")
    lines.append(f"  pipeline run {pipeline.mlflow_run_id} ({pipeline.status})")
    if root.evaluation is not None:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(root.evaluation.metrics.items())
                          if isinstance(v, float) and not k.endswith("_items"))
        lines.append(f"  evaluated on {root.evaluation.dataset.name}:{root.evaluation.split}  {shown}")
    lines += _checkpoint(root.checkpoint, "  ")
    return lines


def _checkpoint(checkpoint: CheckpointNode, indent: str) -> list[str]:
    lines = [f"{indent}checkpoint {checkpoint.path} (sha256 {checkpoint.sha256[:12]})"]
    return lines + _stage(checkpoint.stage, indent + "  ")


def _stage(stage: StageNode, indent: str) -> list[str]:
    loss = "n/a" if stage.final_loss is None else f"{stage.final_loss:.4f}"
    lines = [f"{indent}<- stage {stage.name} ({stage.objective}, {stage.status}, loss {loss}, run {stage.mlflow_run_id})"]
    for data in stage.datasets:
        lines.append(f"{indent}   data {data.name} md5 {data.md5} git {data.git_rev[:12]}")
        for writer in data.produced_by:  # a data stage (CapFilt) wrote it: what that stage read and ran
            lines.append(f"{indent}     written by:")
            lines += _stage(writer, indent + "       ")
    for part, parent in sorted(stage.parent_checkpoints.items()):
        lines.append(f"{indent}   {part} from:")
        lines += _checkpoint(parent, indent + "     ")
    for part, model in sorted(stage.parent_models.items()):
        lines.append(f"{indent}   {part} from model:")
        lines += ["     " + indent + line for line in render_ancestry(model)]
    return lines
