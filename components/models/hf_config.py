"""What a local HF transformers directory says about a pretrained tower: the recipe fields it sets.

A recipe points `model.vision.pretrained` or `model.language_model.pretrained` at a directory
holding an HF model (config.json, safetensors weights, for a vision tower perhaps a
preprocessor_config.json). The sizes the rest of mmops reads (`vision.image_size`,
`language_model.dim`, ...) then come from that config.json, so code downstream of the recipe
works unchanged. Only configs are read here; the weights are the adapters' business
(components/models/hf_backbones.py). transformers is imported when a directory is read, so
recipes without pretrained towers do not need it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"

# model_type in config.json -> tower kind. A whole CLIP / SigLIP checkpoint (both towers) is accepted:
# its vision half is read, as LLaVA does with openai/clip-vit-large-patch14-336.
VISION_MODEL_TYPES: dict[str, str] = {"clip": "clip", "clip_vision_model": "clip", "siglip": "siglip", "siglip_vision_model": "siglip"}
# Decoder-only LMs whose logits are exactly the LM head applied to the final hidden state (no logit
# soft-capping or scaling in the head): training applies the head to target positions only.
LANGUAGE_MODEL_TYPES: tuple[str, ...] = ("llama", "mistral", "qwen2", "qwen3")

# Fields only mmops' own tower has: with a pretrained tower they must stay at their defaults.
OWN_TOWER_ONLY: dict[str, tuple[str, ...]] = {
    "vision": ("position_embedding", "pool", "stem"),
    "language_model": (),
}
# Fields a recipe may set below the pretrained model's value (a cap), instead of equal to it.
CAPS: dict[str, tuple[str, ...]] = {"vision": (), "language_model": ("max_seq_len",)}


class PretrainedDirError(ValueError):
    """A pretrained directory is missing, incomplete, or holds a model type mmops cannot use."""


def resolve_dir(path: str | Path) -> Path:
    """The absolute directory a recipe names (relative paths are read from the working directory)."""
    return Path(path).expanduser().resolve()


def read_config_json(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise PretrainedDirError(f"{directory} does not exist (a local HF transformers directory: config.json + *.safetensors)")
    if not path.is_file():
        raise PretrainedDirError(f"{directory} has no {CONFIG_FILE} (a local HF transformers directory: config.json + *.safetensors)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PretrainedDirError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model_type"), str):
        raise PretrainedDirError(f"{path} names no model_type")
    return raw


def vision_kind(directory: Path) -> str:
    """'clip' or 'siglip': which HF vision model the directory holds."""
    model_type = read_config_json(directory)["model_type"]
    if model_type not in VISION_MODEL_TYPES:
        allowed = ", ".join(VISION_MODEL_TYPES)
        raise PretrainedDirError(f"{directory} holds a {model_type!r} model, not a vision tower mmops can use (allowed model_type: {allowed})")
    return VISION_MODEL_TYPES[model_type]


def hf_vision_config(directory: Path):
    """The tower's HF config with every default filled in (config.json may omit defaults)."""
    kind = vision_kind(directory)
    transformers = import_transformers()
    config_class = transformers.CLIPVisionConfig if kind == "clip" else transformers.SiglipVisionConfig
    return _load_config(config_class, directory)  # a whole CLIP/SigLIP config: its vision_config


def hf_language_model_config(directory: Path):
    model_type = read_config_json(directory)["model_type"]
    if model_type not in LANGUAGE_MODEL_TYPES:
        allowed = ", ".join(LANGUAGE_MODEL_TYPES)
        raise PretrainedDirError(f"{directory} holds a {model_type!r} model; supported causal LMs: {allowed}")
    return _load_config(import_transformers().AutoConfig, directory)


def _load_config(config_class, directory: Path):
    try:  # never over the network, never remote code
        return config_class.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise PretrainedDirError(f"{directory / CONFIG_FILE}: transformers cannot read it ({exc})") from None


def image_statistics(directory: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The tower's per-channel (mean, std) for pixels in [0, 1]: preprocessor_config.json's, else
    the defaults of its model type (CLIP: OpenAI's statistics; SigLIP: 0.5)."""
    path = directory / PREPROCESSOR_FILE
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PretrainedDirError(f"{path} is not valid JSON: {exc}") from None
        if raw.get("do_normalize") is False:
            return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        if "image_mean" in raw and "image_std" in raw:
            return _per_channel(raw["image_mean"], path, "image_mean"), _per_channel(raw["image_std"], path, "image_std")
    import_transformers()  # our error when it is missing
    from transformers.utils import constants

    if vision_kind(directory) == "clip":
        return tuple(constants.OPENAI_CLIP_MEAN), tuple(constants.OPENAI_CLIP_STD)
    return tuple(constants.IMAGENET_STANDARD_MEAN), tuple(constants.IMAGENET_STANDARD_STD)


def _per_channel(value: Any, path: Path, name: str) -> tuple[float, float, float]:
    values = [value] * 3 if isinstance(value, (int, float)) else value  # one number: the same for R, G and B
    if not isinstance(values, list) or len(values) != 3 or not all(isinstance(v, (int, float)) for v in values):
        raise PretrainedDirError(f"{path}: {name} must be one number or three (R, G, B); got {value!r}")
    return tuple(float(v) for v in values)


def vision_fields(directory: Path) -> dict[str, Any]:
    """The VisionConfig fields a pretrained tower sets. Pixel statistics are turned into the space
    our images arrive in: pixels p in [-1, 1] are 2x - 1 for HF's x in [0, 1], so HF's
    (x - m) / s is (p - (2m - 1)) / (2s)."""
    hf = hf_vision_config(directory)
    mean, std = image_statistics(directory)
    return {
        "image_size": hf.image_size,
        "patch_size": hf.patch_size,
        "dim": hf.hidden_size,
        "depth": hf.num_hidden_layers,
        "heads": hf.num_attention_heads,
        "mlp_ratio": hf.intermediate_size / hf.hidden_size,
        "pixel_mean": tuple(2 * m - 1 for m in mean),
        "pixel_std": tuple(2 * s for s in std),
    }


def language_model_fields(directory: Path) -> dict[str, Any]:
    """The LanguageModelConfig fields a pretrained causal LM sets."""
    hf = hf_language_model_config(directory)
    fields = {
        "dim": hf.hidden_size,
        "depth": hf.num_hidden_layers,
        "heads": hf.num_attention_heads,
        "mlp_hidden": hf.intermediate_size,
        "max_seq_len": hf.max_position_embeddings,
    }
    rope = hf.rope_parameters  # transformers 5: every rotary setting in one mapping
    if isinstance(rope, Mapping) and "rope_theta" in rope:
        fields["rope_theta"] = float(rope["rope_theta"])
    return fields


FIELD_READERS: dict[str, Callable[[Path], dict[str, Any]]] = {"vision": vision_fields, "language_model": language_model_fields}


def with_pretrained_fields(data: Any, part: str, defaults: Mapping[str, Any]) -> Any:
    """A tower config's raw input with the fields its pretrained directory sets filled in.

    A field the recipe also sets must agree with the directory (or, for a cap such as max_seq_len,
    not exceed it); fields only mmops' own tower has must stay at their defaults. When the directory
    cannot be read, the input is returned as it is: the `pretrained` field's own validator reports why.
    """
    if not isinstance(data, Mapping) or data.get("pretrained") is None:
        return data
    directory = resolve_dir(data["pretrained"])
    try:
        derived = FIELD_READERS[part](directory)
    except PretrainedDirError:
        return data
    merged = dict(data)
    for name, value in derived.items():
        if name not in data:
            merged[name] = value
            continue
        given = tuple(data[name]) if isinstance(data[name], list) else data[name]
        if name in CAPS[part]:
            if given > value:
                raise ValueError(f"{name}={given} exceeds {value}, the pretrained model's limit ({directory / CONFIG_FILE})")
        elif given != value:
            raise ValueError(
                f"{name}={given} differs from {value} in {directory}: a pretrained {part} sets its own {name}; leave it out"
            )
    for name in OWN_TOWER_ONLY[part]:
        if name in data and data[name] != defaults[name]:
            raise ValueError(f"{name}={data[name]!r} applies to mmops' own {part} only; a pretrained one has none: leave it out")
    return merged


def check_pretrained(path: Path, part: str) -> Path:
    """The resolved directory, once its config is known to describe a usable `part`; else PretrainedDirError."""
    directory = resolve_dir(path)
    FIELD_READERS[part](directory)
    return directory


def has_safetensors(directory: Path) -> bool:
    return any(directory.glob("*.safetensors"))


def copy_configs(directory: Path, out: Path) -> Path:
    """Copy what building the model without its weights needs (config.json, preprocessor_config.json)
    into `out`: a registered model carries these and its own safetensors, not the pretrained weights."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, PREPROCESSOR_FILE):
        if (directory / name).is_file():
            shutil.copyfile(directory / name, out / name)
    return out


def import_transformers():
    try:
        import transformers
    except ImportError:
        raise PretrainedDirError("pretrained towers need HF transformers: pip install -e '.[hf]'") from None
    return transformers
