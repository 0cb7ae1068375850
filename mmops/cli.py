"""The `mmops` command: run, validate and demo recipes; promote and roll back models; build datasets; open the dashboard.

Errors meant for people (MmopsError, bad data) are printed without a
traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from mmops.config_cli import COMMANDS as CONFIG_COMMANDS
from mmops.config_cli import add_parsers as add_config_parsers
from mmops.errors import MmopsError, PipelineError
from mmops.promotion_cli import PROMOTION_COMMANDS
from mmops.promotion_cli import add_parsers as add_promotion_parsers
from mmops.schedule_cli import COMMANDS as SCHEDULE_COMMANDS
from mmops.schedule_cli import add_parsers as add_schedule_parsers

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_RECIPE = PROJECT_ROOT / "recipes" / "llava.yaml"
DEFAULT_WORKDIR = "mmops-work"


def _workdir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"where runs, registry and data live (default: ./{DEFAULT_WORKDIR})")


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; allowed: an integer from 1 to 65535")
    return port


def _address(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address; allowed: e.g. 127.0.0.1, 0.0.0.0 or ::1") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmops", description="Train multimodal models end to end: data -> stages -> registry -> production.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run recipes/llava.yaml on embedded defaults (no server, no credentials)")
    _workdir_arg(demo)

    run = sub.add_parser("run", help="run a recipe: version data, train its stages, evaluate, register, gate and promote")
    run.add_argument("recipe", type=Path)
    run.add_argument("--resume", action="store_true",
                     help="continue the latest run of this recipe that stopped before it finished: finished stages are reused, "
                          "the stage that was training goes on from its last checkpoint")
    _workdir_arg(run)

    train_stage = sub.add_parser("train-stage", help="train one stage of a stopped run on this rank of a launcher (torchrun, srun, a "
                                 "Kubernetes job); then `mmops run RECIPE --resume` goes on")
    train_stage.add_argument("recipe", type=Path)
    train_stage.add_argument("stage", help="the stage's name in the recipe")
    _workdir_arg(train_stage)

    validate = sub.add_parser("validate", help="check recipes without running anything")
    validate.add_argument("recipes", type=Path, nargs="+")

    add_promotion_parsers(sub, _workdir_arg)
    add_config_parsers(sub, _workdir_arg)
    add_schedule_parsers(sub, _workdir_arg)

    models = sub.add_parser("models", help="list registered models, their versions and aliases")
    _workdir_arg(models)

    lineage = sub.add_parser("lineage", help="the full ancestry of a model version: data, recipe, code, stages, parent models")
    lineage.add_argument("model", help="NAME@ALIAS or NAME/VERSION")
    lineage.add_argument("--json", action="store_true", help="print JSON for machines")
    _workdir_arg(lineage)

    dashboard = sub.add_parser("dashboard", help="serve the dashboard (models, lineage, runs, data; promote for signed-in users) on 127.0.0.1")
    dashboard.add_argument("--port", type=_port, default=8501, help="the port to serve on (default: 8501)")
    dashboard.add_argument("--address", type=_address, default="127.0.0.1",
                           help="the address to bind (default: 127.0.0.1; 0.0.0.0 inside a container whose port is published)")
    _workdir_arg(dashboard)

    data = sub.add_parser("data", help="dataset commands: version a recipe's dataset, convert to shards or COCO, generate (the DVC stage's)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    generate = data_sub.add_parser("generate", help="build a dataset from its parameters in params.yaml")
    generate.add_argument("--params", type=Path, required=True)
    generate.add_argument("--name", required=True)
    generate.add_argument("--out", type=Path, required=True)
    version = data_sub.add_parser("version", help="version a recipe's dataset now (import its source's changes) without training; "
                                  "a new version starts the recipes scheduled --on-new-data")
    version.add_argument("recipe", type=Path)
    _workdir_arg(version)
    convert = data_sub.add_parser("convert", help="write a dataset folder (e.g. a Shapes world's) as WebDataset shards or COCO captions")
    convert.add_argument("dataset", type=Path, help="a dataset folder: captions_<split>.json, instruct_<split>.json and their images")
    convert.add_argument("--to", choices=("webdataset", "coco"), required=True)
    convert.add_argument("--out", type=Path, required=True, help="an empty or new folder (upload it to S3 to stream it from there)")
    convert.add_argument("--per-shard", type=_positive, default=1000, help="samples per shard (webdataset; default 1000)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop_cleanly_on_sigterm()
    try:
        return COMMANDS[args.command](args)
    except MmopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # our components raise ValueError subclasses for bad data or config
        if type(exc).__module__.startswith(("components", "mmops", "registry", "flows")):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        _explain_storage(args, exc)
        raise
    except Exception as exc:
        _explain_storage(args, exc)
        raise


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM (a scheduler's, a container's stop, `kill`) ends a command as an error does: the pipeline closes its
    MLflow run and lineage record as failed, and Prefect's temporary server is stopped with the process. Python's
    default would end at once, leaving the run RUNNING and the server orphaned."""

    def stop(signum: int, _frame) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _explain_storage(args: argparse.Namespace, error: BaseException) -> None:
    """A run that died because its workdir filled up or turned read-only ends with that said, not a library's traceback."""
    if "workdir" not in args:
        return
    from mmops.workdir_storage import storage_failure

    explained = storage_failure(Path(args.workdir).expanduser().resolve(), error)
    if explained is not None:
        print(f"error: {explained}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_validate(args: argparse.Namespace) -> int:
    from mmops.recipe import load_recipe

    failed = 0
    for path in args.recipes:
        try:
            loaded = load_recipe(path)
        except MmopsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        stages = " -> ".join(s.name for s in loaded.recipe.stages)
        print(f"ok: {path} ({loaded.recipe.name}, {loaded.recipe.family}; stages {stages}; sha256 {loaded.sha256[:12]})")
    return 2 if failed else 0


def cmd_run(args: argparse.Namespace, recipe: Path | None = None) -> int:
    loaded, settings = _prepare_run(recipe or args.recipe, args.workdir)
    from flows.interrupted_run import stopped_run
    from flows.pipeline import pipeline
    from mmops.summary import print_summary

    from components.training.launchers import rank_launcher

    if (launcher := rank_launcher()) is not None:
        raise PipelineError(f"mmops run is started by {launcher}, once per rank: each would run the whole pipeline. Under a "
                            "launcher run `mmops train-stage RECIPE STAGE` (see the README)")
    resume = getattr(args, "resume", False)
    if resume:
        stopped_run(settings.runs_dir, loaded)  # nothing to resume, or a changed recipe: said before Prefect starts
    summary = pipeline(str(loaded.path), str(settings.workdir), resume=resume)
    print_summary(summary)
    return 0


def cmd_train_stage(args: argparse.Namespace) -> int:
    import logging

    loaded, settings = _prepare_run(args.recipe, args.workdir)
    from components.training.launchers import global_rank
    from flows.stage_launch import train_stage_on_this_rank

    handler = logging.StreamHandler()  # each rank's lines, marked; the libraries' own logging is left as they set it
    handler.setFormatter(logging.Formatter(f"%(asctime)s rank {global_rank()} %(levelname)s %(message)s"))
    log = logging.getLogger("mmops.train_stage")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    outcome = train_stage_on_this_rank(loaded, settings, args.stage)
    if outcome is not None:  # rank 0
        print(f"stage {outcome.name} trained in {outcome.seconds:.1f}s, loss {outcome.final_loss:.4f}: {outcome.weights}\n"
              f"next: mmops run {args.recipe} --resume --workdir {args.workdir}")
    return 0


def cmd_data_version(args: argparse.Namespace) -> int:
    loaded, settings = _prepare_run(args.recipe, args.workdir)
    from flows.dataset_flow import refresh_dataset

    print(json.dumps(refresh_dataset(str(loaded.path), str(settings.workdir)), sort_keys=True))
    return 0


def _prepare_run(recipe_path: Path, workdir: str):
    """The recipe, validated before anything is written, and the settings, exported to the libraries."""
    from mmops.recipe import load_recipe, with_training_settings
    from mmops.settings import Settings, export_library_environment
    from mmops.workdir_storage import check_workdir

    loaded = load_recipe(recipe_path)
    settings = Settings.for_workdir(workdir)
    with_training_settings(loaded, settings.distributed, settings.sources)  # the pipeline applies them; refused here first
    check_workdir(settings.workdir, settings.min_free_mb)
    settings.workdir.mkdir(parents=True, exist_ok=True)
    export_library_environment(settings)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's 20 s default is too short for the ephemeral server on 2 busy cores.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    quiet_library_chatter()
    return loaded, settings


def quiet_library_chatter() -> None:
    """Keep the run's output to what a person needs: Lightning's per-stage banner (no GPU, no TPU,
    an advert) and a deprecation inside Lightning repeat four times a run and say nothing about it."""
    import logging
    import warnings

    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def cmd_demo(args: argparse.Namespace) -> int:
    return cmd_run(args, recipe=DEMO_RECIPE)


def cmd_models(args: argparse.Namespace) -> int:
    from mmops.settings import Settings
    from registry.tracking import client_for

    settings = Settings.for_workdir(args.workdir)
    settings.require_registry()
    client = client_for(settings)
    for model in client.search_registered_models():
        print(model.name)
        for version in sorted(client.search_model_versions(f"name='{model.name}'"), key=lambda v: int(v.version)):
            aliases = ", ".join(a for a, v in model.aliases.items() if str(v) == str(version.version)) or "-"
            print(f"  v{version.version:<4} {aliases:<22} {version.tags.get('mmops.status', ''):<12} {_gated_metrics(version)}")
    return 0


def _gated_metrics(version) -> str:
    """The metrics the recipe's gate judged this version on, as the gate recorded them."""
    import json

    evidence = json.loads(version.tags.get("mmops.gate.evidence", "{}"))
    metrics = evidence.get("candidate") or {}
    if not metrics:
        return "(not gated)"
    return "  ".join(f"{name}={'n/a' if value is None else f'{value:.4f}'}" for name, value in metrics.items())


def cmd_lineage(args: argparse.Namespace) -> int:
    import json

    from mmops.lineage_view import parse_reference, render_ancestry
    from mmops.settings import Settings
    from registry.lineage import ancestry, ancestry_dict, open_store
    from registry.model_versions import alias_version
    from registry.tracking import client_for

    name, alias, version = parse_reference(args.model)
    settings = Settings.for_workdir(args.workdir)
    settings.require_registry()
    if alias is not None:
        version = alias_version(client_for(settings), name, alias)
        if version is None:
            raise MmopsError(f"model {name!r} has no version with the alias {alias!r}")
    with open_store(settings.lineage_url) as store, store.session() as session:
        if args.json:
            print(json.dumps(ancestry_dict(session, name, version), indent=2, default=str))
        else:
            print("\n".join(render_ancestry(ancestry(session, name, version))))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboards.launch import dashboard_environment, streamlit_command
    from mmops.settings import Settings

    settings = Settings.for_workdir(args.workdir)
    print(f"dashboard of {settings.workdir} at http://{args.address}:{args.port}; Ctrl+C stops it", flush=True)
    # Streamlit replaces this process, so stopping `mmops dashboard` stops the server.
    # the app reads MLflow artifacts (previews, sample grids) from wherever the settings put them: S3 included
    environ = dashboard_environment(settings.workdir, {**os.environ, **settings.library_environment()})
    os.execve(sys.executable, streamlit_command(args.port, args.address), environ)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def cmd_data(args: argparse.Namespace) -> int:
    return {"convert": cmd_data_convert, "version": cmd_data_version, "generate": cmd_data_generate}[args.data_command](args)


def cmd_data_convert(args: argparse.Namespace) -> int:
    from components.data.convert import source_yaml, to_coco, to_shards

    if not (args.dataset / "captions_train.json").is_file() and not (args.dataset / "instruct_train.json").is_file():
        raise MmopsError(f"{args.dataset}: not a dataset folder (no captions_train.json or instruct_train.json)")
    if args.out.exists() and any(args.out.iterdir()):
        raise MmopsError(f"--out {args.out} is not empty; converting writes a new folder")
    source = to_shards(args.dataset, args.out, args.per_shard) if args.to == "webdataset" else to_coco(args.dataset, args.out)
    print(f"wrote {args.dataset} as {args.to} in {args.out}; a recipe reads it back with this data section:", file=sys.stderr)
    print(source_yaml(source))
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    from components.data.build import build_shapes_dataset
    from mmops.recipe import DataConfig

    params = yaml.safe_load(args.params.read_text()) or {}
    if args.name not in params:
        raise MmopsError(f"{args.params}: no parameters for dataset {args.name!r} (datasets: {', '.join(params) or 'none'})")
    try:
        data = DataConfig.model_validate({"name": args.name, **params[args.name]})
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MmopsError(f"{args.params}: invalid parameters for dataset {args.name!r}: {fields}") from None

    def progress(done: int, total: int) -> None:
        print(f"\rgenerating {args.name}: {done}/{total} scenes", end="", file=sys.stderr, flush=True)

    summary = build_shapes_dataset(data.shapes, data.tokenizer.vocab_size, args.out, progress, data.tokenizer.pretrained, data.tokenizer.location_bins, data.pages,
                                   data.tokenizer.coordinate_bins, data.videos)
    print(file=sys.stderr)
    print(json.dumps(summary, sort_keys=True))
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "run": cmd_run,
    "train-stage": cmd_train_stage,
    "validate": cmd_validate,
    "models": cmd_models,
    "lineage": cmd_lineage,
    "dashboard": cmd_dashboard,
    "data": cmd_data,
    **PROMOTION_COMMANDS,
    **CONFIG_COMMANDS,
    **SCHEDULE_COMMANDS,
}
