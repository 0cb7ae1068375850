"""Property-based fuzzing of what people and files hand mmops: recipes, dataset manifests (LLaVA JSON, COCO captions,
shards, data sources) and command lines. Whatever comes in, the answer is a validation error that names the problem
(or acceptance), never a traceback, and nothing is written before the input is accepted."""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from components.data.coco_captions import caption_samples_from_coco
from components.data.data_source import DataSource
from components.data.errors import DataError
from components.data.llava_json import check_llava_samples
from components.data.shards import read_shard
from mmops.cli import main
from mmops.errors import RecipeError
from mmops.recipe import load_recipe

TINY_CLIP = yaml.safe_load((Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml").read_text())
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(["../../etc/passwd", "/abs/path", "s3://", "models:/x@production", "${HOME}", "a" * 300]))
json_like = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                         max_leaves=12)


def paths_in(tree, prefix=()):
    """Every (path of keys, value) in a nested recipe mapping."""
    yield prefix, tree
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths_in(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from paths_in(value, (*prefix, index))


PLACES = [path for path, _ in paths_in(TINY_CLIP) if path]


@st.composite
def mutated_recipes(draw):
    recipe = copy.deepcopy(TINY_CLIP)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PLACES))
        parent = recipe
        for key in path[:-1]:
            if not isinstance(parent, dict | list) or (isinstance(parent, dict) and key not in parent) or (isinstance(parent, list) and key >= len(parent)):
                break
            parent = parent[key]
        else:
            if isinstance(parent, dict | list):
                if draw(st.booleans()) and isinstance(parent, dict):
                    parent[draw(st.text(min_size=1, max_size=10))] = draw(json_like)  # an extra key
                elif isinstance(parent, dict) or path[-1] < len(parent):
                    parent[path[-1]] = draw(json_like)  # a value of any kind in place of the right one
    return recipe


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@FUZZ
@given(recipe=mutated_recipes())
def test_a_mutated_recipe_is_accepted_or_refused_with_its_file_named_and_nothing_written(tmp_path_factory, recipe):
    root = tmp_path_factory.mktemp("recipe")
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    try:
        load_recipe(path)
    except RecipeError as error:
        assert str(path) in str(error)
        before = files_under(root)
        assert main(["run", str(path), "--workdir", str(root / "work")]) == 2
        assert files_under(root) == before, "a refused recipe wrote something"


@FUZZ
@given(data=json_like)
def test_any_json_as_a_llava_or_coco_manifest_is_accepted_or_a_data_error(data):
    for check in (lambda d: check_llava_samples(d, "manifest.json"), lambda d: caption_samples_from_coco(d, "captions.json")):
        try:
            check(data)
        except DataError as error:
            assert "json" in str(error)


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["format", "url", "captions", "instruct", "images", "extra"]), json_like, max_size=5))
def test_any_data_source_is_accepted_or_a_validation_error(fields):
    try:
        source = DataSource.model_validate(fields)
    except ValidationError:
        return
    for kind in ("captions", "instruct"):
        for split in ("train", "val", "test"):
            for name in source.files(kind, split):
                assert ".." not in Path(name).parts and not name.startswith("/")


@FUZZ
@given(blob=st.binary(max_size=4096))
def test_any_bytes_as_a_shard_are_read_or_a_data_error(blob):
    try:
        list(read_shard(io.BytesIO(blob), "fuzz.tar"))
    except DataError as error:
        assert "fuzz.tar" in str(error)


WORDS = ["run", "validate", "promote", "rollback", "request", "approve", "requests", "models", "lineage", "config", "schedule",
         "data", "convert", "version", "--reason", "--to", "--out", "--cron", "--per-shard", "--json", "--on-new-data", "--data-only",
         "webdataset", "coco", "../x", "/etc", "x@production", "shapes/1", "0", "-1", "1", "a b", "", "--workdir"]
NEVER = {"demo", "dashboard", "users", "generate", "schedules"}  # start training, a server, or write a file by design


@FUZZ
@given(argv=st.lists(st.sampled_from(WORDS), min_size=1, max_size=7))
def test_a_random_command_line_exits_with_a_message_and_writes_nothing(tmp_path_factory, argv, capsys):
    root = tmp_path_factory.mktemp("cli")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        code = main([*argv, "--workdir", str(root / "w")]) if argv[0] not in NEVER else 2
    except SystemExit as exit_:  # argparse's usage error
        code = exit_.code
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert code in (0, 2), f"exit {code}: {err[-2000:]}"
    assert "Traceback" not in err
    made = files_under(root)
    assert not made, f"{argv} wrote {sorted(map(str, made))[:5]}"
