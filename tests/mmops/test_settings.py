"""Settings: the environment over the settings file over the defaults, each value checked where it came from."""

from __future__ import annotations

import json

import pytest

from mmops.cli import main
from mmops.settings import Settings, SettingsError, export_library_environment


def test_defaults_live_in_the_workdir(tmp_path):
    settings = Settings.for_workdir(tmp_path, env={})
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert settings.dvc_remote == str(tmp_path / "dvc-remote")
    assert settings.prefect_api_url is None and not settings.uses_s3
    assert settings.min_free_mb == 256 and Settings.for_workdir(tmp_path, env={"MMOPS_MIN_FREE_MB": "0"}).min_free_mb == 0
    assert set(settings.sources.values()) == {"default"}


def test_environment_wins_over_the_file_and_the_file_over_defaults(tmp_path):
    (tmp_path / "settings.yaml").write_text("tracking_uri: postgresql://mmops@127.0.0.1:5432/test\ndvc_remote: s3://team-data/dvc\n")
    settings = Settings.for_workdir(tmp_path, env={"MMOPS_DVC_REMOTE": "s3://other-bucket/x/"})
    assert settings.tracking_uri == "postgresql+psycopg://mmops@127.0.0.1:5432/test"  # the installed driver
    assert settings.sources["tracking_uri"] == f"{tmp_path / 'settings.yaml'} (tracking_uri)"
    assert settings.dvc_remote == "s3://other-bucket/x"
    assert settings.sources["dvc_remote"] == "MMOPS_DVC_REMOTE (environment)"
    assert settings.uses_s3


def test_a_named_settings_file_is_read_and_a_missing_one_refused(tmp_path):
    named = tmp_path / "shared.yaml"
    named.write_text("prefect_api_url: http://127.0.0.1:4200/api\ns3_endpoint_url: http://127.0.0.1:9000\ns3_region: eu-west-1\n")
    settings = Settings.for_workdir(tmp_path / "w", env={"MMOPS_SETTINGS_FILE": str(named)})
    env = settings.library_environment()
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1" and env["AWS_RETRY_MODE"] == "standard"
    with pytest.raises(SettingsError, match="MMOPS_SETTINGS_FILE=.*no such file"):
        Settings.for_workdir(tmp_path, env={"MMOPS_SETTINGS_FILE": str(tmp_path / "missing.yaml")})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MMOPS_TRACKING_URI": "mysql://db/x"}, r"MMOPS_TRACKING_URI \(environment\).*tracking_uri: allowed: sqlite:///PATH, postgresql"),
        ({"MMOPS_LINEAGE_URL": "http://127.0.0.1:5000"}, r"lineage_url: allowed: sqlite:///PATH, postgresql"),
        ({"MMOPS_LINEAGE_URL": "postgresql://127.0.0.1"}, "names a host and a database"),
        ({"MMOPS_ARTIFACT_LOCATION": "gs://bucket/x"}, r"artifact_location: allowed: a local folder .* or s3://BUCKET"),
        ({"MMOPS_DVC_REMOTE": "s3://Bad_Bucket/x"}, "bucket 'Bad_Bucket': 3-63 lower-case"),
        ({"MMOPS_S3_ENDPOINT_URL": "127.0.0.1:9000"}, r"s3_endpoint_url: allowed: http\(s\)://HOST"),
        ({"MMOPS_S3_MAX_ATTEMPTS": "50"}, "a whole number from 1 to 20"),
        ({"MMOPS_ACCELERATOR": "tpu"}, r"MMOPS_ACCELERATOR \(environment\).*accelerator: allowed: cpu, gpu, auto"),
        ({"MMOPS_DEVICES": "0"}, "devices: allowed: a whole number from 1 to 1024"),
        ({"MMOPS_PRECISION": "fp8"}, "precision: allowed: 32-true, bf16-mixed"),
        ({"MMOPS_MIN_FREE_MB": "-3"}, "min_free_mb: allowed: a whole number from 0 to 1048576"),
    ],
)
def test_bad_settings_are_refused_with_where_they_came_from(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.for_workdir(tmp_path, env=env)


def test_a_settings_file_with_an_unknown_key_or_no_mapping_is_refused(tmp_path):
    (tmp_path / "settings.yaml").write_text("tracking_url: sqlite:///x.db\n")
    with pytest.raises(SettingsError, match=r"settings.yaml: unknown setting tracking_url; allowed: prefect_api_url, tracking_uri"):
        Settings.for_workdir(tmp_path, env={})
    (tmp_path / "settings.yaml").write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="a mapping of settings is needed"):
        Settings.for_workdir(tmp_path, env={})


def test_a_password_in_a_settings_error_is_hidden(tmp_path):
    with pytest.raises(SettingsError) as error:
        Settings.for_workdir(tmp_path, env={"MMOPS_LINEAGE_URL": "postgresql://mmops:hunter2@127.0.0.1"})
    assert "hunter2" not in str(error.value) and "***" in str(error.value)


def test_exporting_keeps_a_prefect_home_the_caller_chose(tmp_path):
    settings = Settings.for_workdir(tmp_path, env={"MMOPS_S3_MAX_ATTEMPTS": "2"})
    environ = {"PREFECT_HOME": "/elsewhere"}
    export_library_environment(settings, environ)
    assert environ == {"PREFECT_HOME": "/elsewhere", "AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "standard"}


def test_config_shows_every_setting_and_its_source_with_secrets_hidden(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMOPS_TRACKING_URI", "postgresql://mmops:hunter2@127.0.0.1:5432/test")
    monkeypatch.setenv("MMOPS_ARTIFACT_LOCATION", "s3://mmops-artifacts/team")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    assert main(["config", "--workdir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "hunter2" not in text and "s3cr3t-value" not in text and "AKIAEXAMPLE" not in text
    assert "postgresql+psycopg://mmops:***@127.0.0.1:5432/test  [MMOPS_TRACKING_URI (environment)]" in text
    assert "s3_credentials" in text and "found (env; values hidden)" in text
    assert main(["config", "--workdir", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows["artifact_location"] == {"value": "s3://mmops-artifacts/team", "from": "MMOPS_ARTIFACT_LOCATION (environment)"}
    assert rows["workdir"]["value"] == str(tmp_path)


def test_config_with_a_bad_setting_exits_with_the_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMOPS_S3_REGION", " ")
    assert main(["config", "--workdir", str(tmp_path)]) == 0  # a blank variable counts as unset
    assert "s3_region          -  [default]" in capsys.readouterr().out
    monkeypatch.setenv("MMOPS_S3_MAX_ATTEMPTS", "many")
    assert main(["config", "--workdir", str(tmp_path)]) == 2
    assert "error: MMOPS_S3_MAX_ATTEMPTS (environment): 'many' is not allowed" in capsys.readouterr().err


def test_training_settings_replace_the_recipes_and_are_checked_with_it(tmp_path):
    from mmops.errors import RecipeError
    from mmops.recipe import load_recipe, with_training_settings
    from tests.conftest import TESTS

    loaded = load_recipe(TESTS / "e2e" / "tiny_clip.yaml")
    assert with_training_settings(loaded, {}, {}) is loaded
    settings = Settings.for_workdir(tmp_path, env={"MMOPS_ACCELERATOR": "gpu", "MMOPS_DEVICES": "4", "MMOPS_PRECISION": "bf16-mixed"})
    assert settings.distributed == {"accelerator": "gpu", "devices": 4, "precision": "bf16-mixed"}
    trained = with_training_settings(loaded, settings.distributed, settings.sources).recipe
    assert (trained.distributed.accelerator, trained.distributed.devices, trained.distributed.precision) == ("gpu", 4, "bf16-mixed")
    assert trained.distributed.strategy == loaded.recipe.distributed.strategy and trained.stages == loaded.recipe.stages

    nodes = Settings.for_workdir(tmp_path, env={"MMOPS_STRATEGY": "ddp_spawn", "MMOPS_NUM_NODES": "2"})
    with pytest.raises(RecipeError, match=r"tiny_clip.yaml: with the training settings .*num_nodes=2 \(MMOPS_NUM_NODES \(environment\)\)"
                                          r".*ddp_spawn starts its processes on this machine only"):
        with_training_settings(loaded, nodes.distributed, nodes.sources)
