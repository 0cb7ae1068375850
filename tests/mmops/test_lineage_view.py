"""`mmops lineage`'s text view of an ancestry tree."""

from __future__ import annotations

from mmops.lineage_view import render_ancestry
from tests.dashboards.ancestry_trees import bootstrapped


def test_a_dataset_written_by_a_data_stage_shows_that_stage_and_what_it_read():
    text = "\n".join(render_ancestry(bootstrapped()))
    retrain, written, writer, noisy, pretrain = (text.index(s) for s in (
        "<- stage retrain", "data tiny-noisy-capfilt", "written by:", "<- stage capfilt (capfilt", "data tiny-noisy md5"))
    assert retrain < written < writer < noisy and "loss n/a" in text[noisy:]
    assert text.index("<- stage pretrain") > noisy  # the model capfilt ran, below it
