"""Every dashboard page through Streamlit's AppTest, on a workdir the real pipeline produced, and on empty workdirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_testing import DEFAULT_PAGE, open_app, selectbox

from registry.lineage import LineageStore, sqlite_url

PAGES = (DEFAULT_PAGE, "views/lineage.py", "views/runs.py", "views/data.py", "views/promote.py")
STAGES = ("clip", "lm", "align", "instruct")


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
class TestOnAPipelineWorkdir:
    def test_models_page_shows_the_production_version_versions_and_alias_events(self, monkeypatch, pipeline_workdir):
        app = open_app(monkeypatch, pipeline_workdir.path, "views/models.py")
        assert [h.value for h in app.header] == [pipeline_workdir.model]
        assert app.metric[0].label == "production version" and app.metric[0].value == f"v{pipeline_workdir.production}"
        versions, events = (frame.value for frame in app.dataframe)
        assert list(versions["version"]) == ["1", "2"]
        in_production = versions[versions["version"] == pipeline_workdir.production]
        assert list(in_production["status"]) == ["production"] and "production" in in_production["aliases"].iloc[0]
        assert "vqa_exact_match" in versions.columns
        assert events["action"].iloc[0] == "promote" and events["actor"].iloc[0] == "mmops-gate"

    def test_lineage_page_draws_data_stages_and_model_and_shows_a_selected_nodes_details(self, monkeypatch, pipeline_workdir):
        app = open_app(monkeypatch, pipeline_workdir.path, "views/lineage.py")
        production = pipeline_workdir.production
        assert f"Production model: **{pipeline_workdir.model} v{production}**" in [m.value for m in app.markdown]
        dot = app.get("graphviz_chart")[0].proto.spec
        assert dot.startswith("digraph lineage {")
        assert pipeline_workdir.dataset_md5s[int(production) - 1] in dot
        for stage in STAGES:
            assert f'label="stage {stage}\\n' in dot
        assert f'"model:{pipeline_workdir.model}/{production}" -> "alias:{pipeline_workdir.model}@production"' in dot

        dataset_id = next(line.split('"')[1] for line in dot.splitlines() if line.lstrip().startswith('"dataset:'))
        selectbox(app, "node (outlined in red; its details are beside the graph)").select(dataset_id).run()
        details = json.loads(app.json[0].value)
        assert details["md5"] == pipeline_workdir.dataset_md5s[int(production) - 1] and details["dataset"] == "tiny-shapes"
        assert 'penwidth=3' in next(line for line in app.get("graphviz_chart")[0].proto.spec.splitlines() if line.lstrip().startswith('"dataset:'))

        other = "1" if production == "2" else "2"
        selectbox(app, "version").select(other).run()
        dot = app.get("graphviz_chart")[0].proto.spec
        assert f'"model:{pipeline_workdir.model}/{other}"' in dot and pipeline_workdir.dataset_md5s[int(other) - 1] in dot

    def test_runs_page_shows_curves_and_recipe_data_and_metric_diffs(self, monkeypatch, pipeline_workdir):
        app = open_app(monkeypatch, pipeline_workdir.path, "views/runs.py")
        recipe_diff = app.code[0].value
        assert "--- tiny-llava v1" in recipe_diff and "+++ tiny-llava v2" in recipe_diff
        assert "-  shapes: {seed: 1," in recipe_diff and "+  shapes: {seed: 2," in recipe_diff
        assert "steps: 4" in recipe_diff
        assert selectbox(app, "metric").value == "train/loss"
        assert sorted(s.value for s in app.subheader) == sorted(f"stage {stage}" for stage in STAGES)
        assert len(app.get("vega_lite_chart")) == len(STAGES)
        data_diff, metrics = (frame.value for frame in app.dataframe)
        assert list(data_diff["change"]) == ["changed"]
        first, second = pipeline_workdir.dataset_md5s
        assert first in data_diff["a"].iloc[0] and second in data_diff["b"].iloc[0]
        assert "vqa_exact_match" in list(metrics["metric"])

    def test_data_page_shows_images_and_their_annotations(self, monkeypatch, pipeline_workdir):
        app = open_app(monkeypatch, pipeline_workdir.path, "views/data.py")
        versions = app.dataframe[0].value
        assert set(versions["md5"]) == set(pipeline_workdir.dataset_md5s)
        assert len(app.image) == 4 and app.image[0].captions == ["test_000000.png"]
        samples = json.loads((pipeline_workdir.path / "datasets" / "data" / "tiny-shapes" / "instruct_test.json").read_text())
        shown = [m.value.replace("\\", "") for m in app.markdown]
        first_turns = samples[0]["conversations"]
        assert f"**human:** {first_turns[0]['value'].replace('<image>', '').strip()}" in shown
        assert f"**gpt:** {first_turns[1]['value']}" in shown

        versions_box = selectbox(app, "dataset version")
        assert pipeline_workdir.dataset_md5s[0] in versions_box.options[1], "newest first: the first run's data is second"
        versions_box.select_index(1).run()
        assert not app.image and "not this one" in app.info[0].value

    def test_without_mlflow_the_pages_show_what_the_lineage_store_holds_and_say_what_is_missing(
        self, monkeypatch, pipeline_workdir, tmp_path
    ):
        monkeypatch.setenv("MMOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}")
        app = open_app(monkeypatch, pipeline_workdir.path, "views/models.py")
        assert "cannot be read" in app.warning[0].value and "no pipeline has run" in app.warning[0].value
        assert app.metric[0].value == f"v{pipeline_workdir.production}"
        assert list(app.dataframe[0].value["aliases"]) == ["production" if v == pipeline_workdir.production else "-" for v in ("1", "2")]
        app.switch_page("views/runs.py").run()
        assert "Metric curves come from MLflow, which cannot be read" in app.warning[0].value
        assert not app.get("vega_lite_chart") and "+  shapes: {seed: 2," in app.code[0].value
        assert not (tmp_path / "elsewhere").exists()

    def test_pages_write_nothing_to_the_workdir(self, monkeypatch, pipeline_workdir):
        before = files_of(pipeline_workdir.path)
        app = open_app(monkeypatch, pipeline_workdir.path, PAGES[0])
        for page in PAGES[1:]:
            app.switch_page(page).run()
            assert not app.exception, [e.value for e in app.exception]
        assert files_of(pipeline_workdir.path) == before


@pytest.mark.parametrize("page", PAGES)
def test_a_workdir_without_runs_says_so_and_creates_nothing(monkeypatch, tmp_path, page):
    workdir = tmp_path / "no-runs-yet"
    app = open_app(monkeypatch, workdir, page)
    message = app.info[0].value
    assert "No runs yet" in message and "mmops demo" in message and str(workdir) in message
    assert not workdir.exists()


def test_a_lineage_store_without_models_says_so(monkeypatch, tmp_path):
    store = LineageStore(sqlite_url(tmp_path / "lineage.db"))
    store.upgrade()
    store.dispose()
    app = open_app(monkeypatch, tmp_path, "views/lineage.py")
    assert "No runs yet" in app.info[0].value
    assert any("no registered model version yet" in caption.value for caption in app.caption)
