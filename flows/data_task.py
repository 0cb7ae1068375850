"""Version the recipe's dataset with DVC (build or import, or reuse; commit, push)."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.data.build import build_imported_dataset
from components.data.pretrained_tokenizer import tokenizer_sha256
from mmops.recipe import DataConfig
from mmops.redaction import redact
from mmops.settings import Settings
from registry.data_repo import DatasetVersion, DvcRemote, source_record, verify_dataset, version_dataset, version_written_dataset, written_version
from registry.source_store import fingerprint, opener


def dataset_params(data: DataConfig) -> dict:
    """What params.yaml holds for a dataset: everything its DVC stage depends on. A pretrained
    tokenizer is recorded with its file's sha256, so that a changed file builds a new version."""
    tok = data.tokenizer
    if tok.pretrained is None:
        tokenizer = tok.model_dump(mode="json", include={"vocab_size"})  # as before pretrained tokenizers existed
        if tok.location_bins is not None:  # and as before location tokens, when there are none
            tokenizer["location_bins"] = tok.location_bins
        if tok.coordinate_bins is not None:
            tokenizer["coordinate_bins"] = tok.coordinate_bins
    else:
        tokenizer = {"pretrained": str(tok.pretrained), "sha256": tok.sha256 or tokenizer_sha256(tok.pretrained)}
    params = {"shapes": data.shapes.model_dump(mode="json"), "tokenizer": tokenizer}
    if data.pages is not None:  # and as before text pages, when there are none
        params["pages"] = data.pages.model_dump(mode="json")
    if data.videos is not None:
        params["videos"] = data.videos.model_dump(mode="json")
    return params


def imported_version(settings: Settings, data: DataConfig, logger) -> DatasetVersion:
    """The dataset imported from data.source: the version there is when the source (its url, format, files and
    every object's size and ETag or mtime) and the tokenizer are as recorded, else a new one imported now."""
    source, tok = data.source, data.tokenizer
    remote, repo = DvcRemote.from_settings(settings), settings.datasets_repo
    record = json.dumps({"source": source.model_dump(mode="json"), "tokenizer": dataset_params(data)["tokenizer"],
                         "objects": fingerprint(source.url, settings)}, indent=1, sort_keys=True)
    if source_record(repo, data.name) == record:
        logger.info("dataset %s: source %s unchanged since its last import", data.name, source.url)
        verify_dataset(repo, data.name)
        return written_version(repo, remote, data.name)
    logger.info("importing dataset %s from %s (%s)", data.name, source.url, source.format)

    def write(out: Path) -> None:
        build_imported_dataset(source, opener(source.url, settings), tok.vocab_size, out,
                               lambda done, total: logger.info("import: %d/%d files", done, total),
                               tok.pretrained, tok.location_bins, tok.coordinate_bins)

    return version_written_dataset(repo, remote, data.name, write, f"imported from {redact(source.url)}", record)


@task(name="version-data", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def version_data(settings: Settings, data: DataConfig) -> DatasetVersion:
    logger = get_run_logger()
    logger.info("versioning dataset %s in %s (DVC remote %s)", data.name, settings.datasets_repo, settings.dvc_remote)
    if data.source is not None:
        version = imported_version(settings, data, logger)
    else:
        version = version_dataset(settings.datasets_repo, DvcRemote.from_settings(settings), data.name, dataset_params(data))
    logger.info("dataset %s: md5 %s, git %s", data.name, version.md5, version.git_rev[:10])
    return version
