"""The Runs page's pure parts: which stage runs a version's ancestry holds, and the diff tables."""

from __future__ import annotations

from ancestry_trees import DATA, clip_model, llava

from dashboards.run_compare import (
    ancestry_stages,
    data_diff_rows,
    metric_delta_rows,
    stage_runs,
)
from registry.lineage import DataDiff, DatasetChange, DatasetNode, MetricDelta

OTHER = DatasetNode("captions", "9" * 32 + ".dir", "a" * 40, "/w/datasets/data/captions")


def test_ancestry_stages_are_each_stage_once_in_training_order():
    assert [s.name for s in ancestry_stages(llava())] == ["clip", "lm", "align", "instruct"]


def test_a_parent_models_stages_come_first_and_are_labelled_with_their_recipe():
    root = llava(vision_model=clip_model())
    assert [s.name for s in ancestry_stages(root)] == ["contrastive", "lm", "align", "instruct"]
    assert stage_runs(root) == {
        "contrastive (tiny-clip)": "mlflow-clip-run-contrastive",
        "lm": "mlflow-run-2-lm",
        "align": "mlflow-run-2-align",
        "instruct": "mlflow-run-2-instruct",
    }


def test_data_diff_rows_name_each_added_removed_and_changed_dataset():
    changed = DatasetNode(DATA.name, "1" * 32 + ".dir", "b" * 40, DATA.path)
    rows = data_diff_rows(DataDiff(added=(OTHER,), removed=(), changed=(DatasetChange(DATA.name, (DATA,), (changed,)),)))
    assert rows == [
        {"change": "added", "dataset": "captions", "a": "-", "b": f"md5 {OTHER.md5} (git {'a' * 12})"},
        {"change": "changed", "dataset": DATA.name, "a": f"md5 {DATA.md5} (git {'f' * 12})", "b": f"md5 {changed.md5} (git {'b' * 12})"},
    ]
    assert data_diff_rows(DataDiff((), (OTHER,), ()))[0]["change"] == "removed"


def test_metric_delta_rows_show_both_values_and_the_signed_change():
    rows = metric_delta_rows({"vqa_exact_match": MetricDelta(0.5, 0.75, 0.25), "new_metric": MetricDelta(None, 1.0, None)})
    assert rows == [
        {"metric": "vqa_exact_match", "a": "0.5000", "b": "0.7500", "b - a": "+0.2500"},
        {"metric": "new_metric", "a": "-", "b": "1.0000", "b - a": "-"},
    ]
