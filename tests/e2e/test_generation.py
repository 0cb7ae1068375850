"""The text-to-image and text-to-video recipes through `mmops run`: a CLIP's text tower, the video compression
network and the diffusion transformer trained, evaluated by denoising and judged samples, registered with their
previews and served as a generator."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from PIL import Image

from registry.tracking import tracking
from tests.dashboards.app_testing import DEFAULT_PAGE, open_app
from tests.e2e.test_families import run_family

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_on_loopback_prefect")]


def test_text_to_image_trains_its_three_stages_and_serves_images_of_the_size_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = run_family("tiny_t2i_dit.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip", "autoencode", "denoise"]
    autoencode = run.client.get_run(run.stage_runs["autoencode"]).data.metrics
    assert {"train/reconstruction", "train/kl"} <= autoencode.keys()

    clip, denoise = run.stage_weights("clip"), run.stage_weights("denoise")
    assert all(torch.equal(denoise[k], v) for k, v in clip.items() if k.startswith(("text.", "text_projection.")))  # frozen, as registered
    assert denoise["autoencoder.latent_scale"].item() != 1.0  # calibrated on the training latents before the transformer learned

    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"denoise_loss", "denoise_loss_t50", "denoise_loss_t950", "real_accuracy", "reconstructed_accuracy", "generation_accuracy_g1",
            "generation_accuracy_g3", "generation_colour_accuracy_g3", "generation_ratio", "guidance_gain"} <= metrics.keys()
    assert metrics["generation_items"] == 4  # evaluation.limit test captions
    artifacts = {a.path for a in run.client.list_artifacts(run.version.run_id, "evaluation")}
    assert {"evaluation/samples.gif", "evaluation/samples.png", "evaluation/predictions_test.json"} <= artifacts
    records = json.loads(Path(run.client.download_artifacts(run.version.run_id, "evaluation/predictions_test.json", str(tmp_path))).read_text())
    assert len(records) == 4 * 2 and {r["guidance"] for r in records} == {1.0, 3.0}

    with tracking(run.settings):
        served = mlflow.pyfunc.load_model("models:/tiny-t2i-dit@production")
        out = served.predict(pd.DataFrame({"prompt": ["a large red square", "a small blue circle"], "width": [48, 32], "seed": [1, 1]}))
        assert out[["frames", "height", "width"]].values.tolist() == [[1, 32, 48], [1, 32, 32]]
        assert Image.open(io.BytesIO(base64.b64decode(out.loc[0, "strip"]))).size == (48, 32)
        with pytest.raises(ValueError, match="width=30; allowed: multiples of 8"):
            served.predict(pd.DataFrame({"prompt": ["a red square"], "width": [30]}))
        image = next((run.work / "datasets" / "data" / "tiny-shapes-videos" / "videos" / "test").glob("*.png"))
        edited = served.predict(pd.DataFrame({"prompt": ["a small green circle"], "mode": ["edit"], "source": [str(image)], "strength": [0.5]}))
        assert edited.loc[0, ["frames", "height", "width"]].tolist() == [1, *reversed(Image.open(image).size)]  # the source's size
        animated = served.predict(pd.DataFrame({"prompt": ["a red square"], "mode": ["animate"], "source": [str(image)], "frames": [5]}))
        assert animated.loc[0, "frames"] == 5
        with pytest.raises(ValueError, match="mode edit needs a source image or clip"):
            served.predict(pd.DataFrame({"prompt": ["a red square"], "mode": ["edit"]}))

    models_page = open_app(monkeypatch, run.work, DEFAULT_PAGE)  # the Models page charts the samples by scale and shows them
    subheaders = [h.value for h in models_page.subheader]
    assert {"Samples by guidance scale, v1", "Samples, v1"} <= set(subheaders)


def test_text_to_video_on_recaptioned_clips_generates_the_duration_and_shape_asked_from_expanded_prompts(tmp_path: Path):
    """tiny_recaption_dit.yaml: tiny_video_dit.yaml's model (images and 5-frame clips, factorised attention) trained on
    re-captioned videos, one run for both (they cost the suite minutes each)."""
    run = run_family("tiny_recaption_dit.yaml", tmp_path / "work")
    assert run.client.get_run(run.stage_runs["denoise"]).data.params["objective"] == "diffusion"
    assert "autoencoder.encoder.time_down.conv.weight" in run.stage_weights("denoise")  # time is compressed
    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert "generation_motion_accuracy_g3" in metrics and "real_motion_accuracy" in metrics

    recaption = run.client.get_run(run.stage_runs["recaption"])
    assert recaption.data.metrics["caption_words_after"] > 2 * recaption.data.metrics["caption_words_before"]
    written = recaption.data.tags["mmops.dataset_written"]
    assert written.startswith("tiny-shapes-moving-recaption@") and written in run.version.tags["mmops.datasets_written"]
    examples = json.loads(Path(run.client.download_artifacts(recaption.info.run_id, "recaption_examples.json", str(tmp_path))).read_text())
    assert all(e["descriptive"].endswith("on a dark background.") and len(e["descriptive"]) > len(e["short"]) for e in examples)
    records = json.loads(Path(run.client.download_artifacts(run.version.run_id, "evaluation/predictions_test.json", str(tmp_path))).read_text())
    assert all(r["prompt"] != r["caption"] and r["prompt"].endswith("on a dark background.") for r in records)
    with tracking(run.settings):
        served = mlflow.pyfunc.load_model("models:/tiny-recaption-dit@production")
        out = served.predict(pd.DataFrame({"prompt": ["a large red square moves left", "a red square"], "frames": [5, 1], "expand": [None, False]}))
    assert out.loc[0, "prompt"] == "A large red square moves left. A square video, 32 pixels wide and 32 high and 5 frames long, of one shape on a dark background."
    assert out.loc[1, "prompt"] == "a red square"
    with tracking(run.settings):
        out = served.predict(pd.DataFrame({"prompt": ["a large red square moves left"], "frames": [5], "height": [48], "width": [32]}))
        assert out.loc[0, ["frames", "height", "width"]].tolist() == [5, 48, 32]
        gif = Image.open(io.BytesIO(base64.b64decode(out.loc[0, "gif"])))
        assert gif.n_frames == 5 and gif.size == (32, 48)
        with pytest.raises(ValueError, match=r"frames=4; allowed: 1 \+ k \* 2"):
            served.predict(pd.DataFrame({"prompt": ["a red square"], "frames": [4]}))
