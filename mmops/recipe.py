"""The recipe: one YAML file per model family, parsed once into typed objects.

A recipe names the data, the architecture, the training stages (each with the
parents its weights come from and the freeze plan saying what trains), the
evaluation and the promotion gate. Everything is validated here, before any
compute or write; unknown keys are errors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components.data.data_source import DataSource
from components.data.pretrained_tokenizer import pretrained_tokenizer_file, tokenizer_sha256
from components.data.ofa_instructions import OFA_TASKS
from components.data.shapes_world import ShapesConfig
from components.data.text_pages import PagesConfig
from components.data.shapes_videos import VideosConfig
from components.inference.capfilt import CapFiltConfig
from components.models.diffusion.sampling import SamplingConfig
from components.inference.feedback import FeedbackConfig
from components.models.family import ModelConfig
from components.models.hf_config import has_safetensors, resolve_dir
from components.training.config import DistributedConfig, OptimizerConfig
from components.training.freeze import in_group
from components.evaluation.metric_names import (
    ANSWER_METRICS, CONTRASTIVE_METRICS, GENERATION_METRICS, GROUNDED_CAPTION_METRICS, OFA_METRICS, READING_METRICS, is_answer_metric,
    is_contrastive_metric, is_generation_metric, scale_tag,
)
from components.training.uniperceiver_tasks import TASKS as UNIPERCEIVER_TASKS
from components.training.objectives import ANSWERING_OBJECTIVES, CONTRASTIVE_OBJECTIVES, FLAMINGO_OBJECTIVES, GENERATIVE_OBJECTIVES, LLAVA_OBJECTIVES, OFA_OBJECTIVES, ONE_IMAGE_OBJECTIVES, OUTPUT_OBJECTIVES, VIDEO_OBJECTIVES
from mmops.errors import RecipeError

Objective = Literal[
    "contrastive", "language_modeling", "llava_pretrain", "llava_instruct", "llava_multitask", "llava_interleaved", "flamingo_interleaved",
    "qformer_pretrain", "blip_pretrain", "uni_perceiver", "vq_tokenizer", "ofa_instruct", "video_autoencoder", "diffusion",
]

# The parameter groups (top-level submodules) of the model each objective trains.
MODEL_PARTS: dict[str, tuple[str, ...]] = {
    "contrastive": ("vision", "text", "image_projection", "text_projection", "logit_scale"),
    "language_modeling": ("language_model",),
    **dict.fromkeys(LLAVA_OBJECTIVES, ("vision", "connector", "language_model", "visual_expert", "image_newline", "image_boundaries")),
    **dict.fromkeys(FLAMINGO_OBJECTIVES, ("vision", "connector", "language_model", "gated_cross_attention")),
    "qformer_pretrain": ("vision", "qformer", "image_projection", "text_projection", "itm_head", "lm_head", "logit_scale"),
    "blip_pretrain": ("vision", "text", "image_projection", "text_projection", "itm_head", "lm_head", "logit_scale"),
    "uni_perceiver": (
        "token_embed", "text_positions", "mask_token", "patch_embed", "patch_positions", "frame_positions", "type_embed", "spe",
        "blocks", "norm", "projection", "logit_scale",
    ),
    "vq_tokenizer": ("image_tokenizer",),
    "video_autoencoder": ("autoencoder",),
    "diffusion": ("autoencoder", "text", "text_projection", "dit"),
    "ofa_instruct": (
        "vision", "image_projection", "image_tokenizer", "token_embed", "encoder_positions", "decoder_positions", "type_embed",
        "encoder", "encoder_norm", "decoder", "decoder_norm",
    ),
}

# Parts a LLaVA model has only when a model option asks for them: part -> (has it?, what is missing).
OPTIONAL_PARTS: dict[str, tuple[Callable[[ModelConfig], bool], str]] = {
    "visual_expert": (lambda m: m.visual_expert, "model.visual_expert is not true"),
    "image_newline": (lambda m: m.anyres_pinpoints is not None, "model.anyres_pinpoints is not set"),
    "image_boundaries": (lambda m: m.image_boundaries, "model.image_boundaries is not true"),
}

# The objectives whose data are conversations of varying length, which group_by_length can batch.
LENGTH_GROUPED_OBJECTIVES = ONE_IMAGE_OBJECTIVES
# The tasks a multi-task objective weighs with `tasks`.
STAGE_TASKS: dict[str, tuple[str, ...]] = {"uni_perceiver": UNIPERCEIVER_TASKS, "ofa_instruct": OFA_TASKS}
# The objectives that can read text pages (corpus: pages): a tower and text tower, an LM, a one-image reader.
PAGE_OBJECTIVES = frozenset({"contrastive", "language_modeling"}) | ONE_IMAGE_OBJECTIVES

MODEL_URI = re.compile(r"^models:/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>\d+))$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenizerConfig(Strict):
    vocab_size: Annotated[int, Field(ge=300, le=65536)] = 512
    """The size of the byte-level BPE trained on the dataset's corpus."""
    pretrained: Path | None = None
    """A local HF directory whose tokenizer.json the dataset takes instead of training one (the
    pretrained LM's own; <pad>, <s>, </s> and <image> are added where missing). Relative paths are
    read from the directory mmops runs in."""
    location_bins: Annotated[int, Field(ge=2, le=64)] | None = None
    """KOSMOS-2: the vocabulary also holds a bins x bins grid of location tokens (<patch_index_NNNN>) and the
    grounding markup (<grounding>, <phrase>, </phrase>, <object>, </object>, ...), each one whole token."""
    coordinate_bins: Annotated[int, Field(ge=2, le=1000)] | None = None
    """OFA: the vocabulary also holds this many location tokens (<bin_NNN>), each coordinate of a box one of them."""
    sha256: str | None = None
    """The sha256 of that tokenizer.json. Optional in a recipe (then checked); the pipeline records it
    in the dataset's parameters, so a changed file builds a new dataset version."""

    @field_validator("pretrained")
    @classmethod
    def _tokenizer_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        directory = resolve_dir(value)
        pretrained_tokenizer_file(directory)
        return directory

    @model_validator(mode="after")
    def _one_source(self) -> TokenizerConfig:
        if self.location_bins is not None and self.coordinate_bins is not None:
            raise ValueError("location_bins (KOSMOS-2's grid cells) and coordinate_bins (OFA's coordinates) are two ways to write a box; choose one")
        if self.pretrained is None:
            if self.sha256 is not None:
                raise ValueError("sha256 pins a pretrained tokenizer.json; without pretrained there is none (leave sha256 out)")
            return self
        if "vocab_size" in self.model_fields_set:
            raise ValueError("vocab_size sizes a tokenizer trained on the data; a pretrained one brings its own: leave vocab_size out")
        if self.location_bins is not None or self.coordinate_bins is not None:
            raise ValueError("location_bins and coordinate_bins add location tokens to a tokenizer trained on the data; with pretrained, leave them out")
        if self.sha256 is not None and self.sha256 != (actual := tokenizer_sha256(self.pretrained)):
            raise ValueError(f"sha256 {self.sha256} is not that of {self.pretrained}/tokenizer.json ({actual})")
        return self


def _check_name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"name {value!r} must match {NAME.pattern} (lowercase letters, digits, '-', '_'; at most 63)")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


class DataConfig(Strict):
    name: Name = "shapes"
    generator: Literal["shapes"] = "shapes"
    shapes: ShapesConfig = ShapesConfig()
    pages: PagesConfig | None = None
    """KOSMOS-2.5's text-dense pages, written beside the scenes (components.data.text_pages); stages
    read them with `corpus: pages`. Unset, the dataset has none."""
    videos: VideosConfig | None = None
    """Videos of moving, turning and recolouring shapes at several durations and native sizes, with short and
    descriptive captions (components.data.shapes_videos): what the diffusion stages train on. Unset, none."""
    source: DataSource | None = None
    """Data that is not generated: LLaVA JSON, COCO captions or WebDataset shards in a folder or under an S3
    prefix (components.data.data_source), imported into a DVC-versioned dataset; a changed source makes a new
    version. With a source, the generator's settings (shapes, pages, videos) are not used: leave them out."""
    tokenizer: TokenizerConfig = TokenizerConfig()

    @model_validator(mode="after")
    def _one_origin(self) -> DataConfig:
        if self.source is not None and (generated := {"shapes", "pages", "videos", "generator"} & self.model_fields_set):
            raise ValueError(f"data.source imports the dataset; {', '.join(sorted(generated))} generate one: leave them out")
        return self


class StageConfig(Strict):
    name: Name
    objective: Objective
    init: dict[str, str] = {}
    """Where each part's starting weights come from: part -> stage name or models:/NAME@ALIAS|/VERSION.
    The part '*' means every part the source has."""
    trainable: list[str]
    """The freeze plan: the parameter groups that train; everything else stays bit-identical."""
    optimizer: OptimizerConfig = OptimizerConfig()
    steps: Annotated[int, Field(ge=1)] = 100
    batch_size: Annotated[int, Field(ge=1)] = 32
    max_len: Annotated[int, Field(ge=8)] = 160
    seed: int = 0
    log_every: Annotated[int, Field(ge=1)] = 10
    checkpoint_every: Annotated[int, Field(ge=0)] = 200
    """Save the whole training state every so many steps (the latest kept until the stage ends), so that
    `mmops run --resume` continues a killed run from there; 0: never."""
    loss_weighting: Literal["token", "answer"] = "token"
    """`token`: every target token counts the same (LLaVA); `answer`: every answer counts the same,
    so a long answer such as a 16-token box does not drown the one-word answers."""
    group_by_length: bool = False
    """Batch conversations of similar length together (LLaVA's group_by_length): less padding,
    so faster steps; which samples share a batch is still random within groups of 50 batches."""
    text_corpus: Literal["turns", "described"] = "turns"
    """language_modeling stages: what the LM reads. `turns`: the captions and every question-answer
    turn on its own. `described`: also each conversation after its image's caption (questions about
    a scene answered from its description), which a frozen LM behind soft visual prompts needs."""
    caption_negatives: bool = False
    """blip_pretrain stages: the captions' one-detail hard negatives join the texts of BLIP's ITC, as the contrastive
    objective always scores them (NegCLIP)."""
    region_weight: Annotated[float, Field(ge=0)] = 0.0
    """Contrastive stages: how much region-word alignment adds to CLIP's loss (each captioned
    region's patch tokens pulled towards its phrase's words; needs `regions` in the captions, which
    the Shapes world writes). 0: CLIP's loss alone. The global loss leaves shape out of the single
    patch tokens a LLaVA connector reads; see components.training.losses.region_word_loss."""

    data: Name | None = None
    """The data stage whose dataset this stage trains on (CapFilt's bootstrapped captions); default:
    the recipe's dataset."""
    max_images: Annotated[int, Field(ge=1)] = 3
    """llava_interleaved stages: the most images (captions and conversations, each with its image)
    one training sequence holds; each sequence draws 1 to this many. (Flamingo's limit is
    model.flamingo.max_images, which its few-shot prompts share.)"""
    tasks: dict[str, Annotated[float, Field(ge=0)]] = {}
    """uni_perceiver stages: the weight of each task (retrieval, mlm, captioning, classification: single-object
    scenes against their class names in evaluation.zero_shot_templates), the chance a step trains on it (see
    training.uniperceiver_tasks; unset: the first three alike); ofa_instruct stages: each instruction task's share
    of the items (caption, vqa, grounding, region_caption, infilling; see data.ofa_instructions; unset: all alike)."""
    corpus: Literal["scenes", "pages"] = "scenes"
    """What the stage reads: `scenes`, the Shapes scenes' captions and conversations; `pages` (KOSMOS-2.5),
    the dataset's text pages: for contrastive and language_modeling stages what each page says (its lines as
    regions), for LLaVA-style stages each page read by both task prompts (`<ocr>`: text blocks with their
    boxes; `<md>`: markdown). Needs data.pages."""
    location_tokens: bool = False
    """KOSMOS-2, for LLaVA-style stages: captions are grounded captions (asked for with `<grounding>`; every
    phrase marked and followed by its box's location tokens) and grounding answers are location tokens;
    needs data.tokenizer.location_bins."""
    text_only_mix: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """VILA: the fraction of a one-image conversation stage's samples (llava_pretrain, llava_instruct,
    llava_multitask) that are text only: conversations read after their scene's caption, the corpus of
    `text_corpus: described`, drawn from the train split. 0: images only."""
    label_prompts: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Contrastive stages: UniCL (Florence). The scenes of one object are image-label data, labelled by
    its colour and shape; this fraction of their texts is a prompt of that label (a template drawn from
    evaluation.zero_shot_templates) instead of the caption, and pairs that share a label are positives
    for one another. 0: CLIP, where only an image's own caption is its positive."""

    @model_validator(mode="after")
    def _parts_exist(self) -> StageConfig:
        parts = MODEL_PARTS[self.objective]
        if self.loss_weighting == "answer" and self.objective in ("contrastive", "qformer_pretrain", "blip_pretrain"):
            raise ValueError(f"loss_weighting 'answer' needs answer tokens; the {self.objective} objective has none (allowed there: token)")
        if self.text_corpus != "turns" and self.objective != "language_modeling":
            raise ValueError(f"text_corpus chooses a language model's text; the {self.objective} objective reads none (allowed for: language_modeling)")
        if self.label_prompts > 0 and self.objective not in ("contrastive", "uni_perceiver"):
            raise ValueError(f"label_prompts are image-label texts for a contrastive model; the {self.objective} objective has none (allowed for: contrastive, uni_perceiver)")
        if self.caption_negatives and self.objective != "blip_pretrain":
            raise ValueError(f"caption_negatives add the captions' negatives to BLIP's ITC; the {self.objective} objective has none (allowed for: blip_pretrain; contrastive stages always use them)")
        if self.region_weight > 0 and self.objective != "contrastive":
            raise ValueError(f"region_weight aligns a contrastive tower's patches with words; the {self.objective} objective has none (allowed for: contrastive)")
        if self.text_only_mix > 0 and self.objective not in ONE_IMAGE_OBJECTIVES:
            raise ValueError(f"text_only_mix mixes text into one-image conversations; the {self.objective} objective has none (allowed for: llava_instruct, llava_multitask, llava_pretrain)")
        if self.tasks and self.objective not in STAGE_TASKS:
            raise ValueError(f"tasks weigh Uni-Perceiver's or OFA's tasks; the {self.objective} objective has one loss (allowed for: {', '.join(STAGE_TASKS)})")
        if unknown := sorted(set(self.tasks) - set(STAGE_TASKS.get(self.objective, ()))):
            raise ValueError(f"tasks: {', '.join(unknown)} is not a task of the {self.objective} objective (allowed: {', '.join(STAGE_TASKS[self.objective])})")
        if self.tasks and not any(self.tasks.values()):
            raise ValueError("tasks: every weight is 0; at least one task must train")
        if self.location_tokens and self.objective not in LLAVA_OBJECTIVES:
            raise ValueError(f"location_tokens ground a LLaVA-style model's captions and boxes; the {self.objective} objective has none (allowed for: {', '.join(sorted(LLAVA_OBJECTIVES))})")
        if self.corpus == "pages" and self.objective not in PAGE_OBJECTIVES:
            raise ValueError(f"corpus 'pages' is read by contrastive, language-model and one-image conversation stages; the {self.objective} objective reads scenes only (allowed for: {', '.join(sorted(PAGE_OBJECTIVES))})")
        if self.corpus == "pages" and (self.text_only_mix > 0 or self.label_prompts > 0 or self.text_corpus != "turns"):
            raise ValueError("corpus 'pages' has no captions of scenes to mix in, label or describe with (text_only_mix, label_prompts and text_corpus are for corpus 'scenes')")
        if self.max_images != 3 and self.objective != "llava_interleaved":
            raise ValueError(f"max_images is for the llava_interleaved objective's sequences; the {self.objective} objective has none (allowed for: llava_interleaved)")
        if self.group_by_length and self.objective not in LENGTH_GROUPED_OBJECTIVES:
            allowed = ", ".join(sorted(LENGTH_GROUPED_OBJECTIVES))
            raise ValueError(f"group_by_length groups conversations; the {self.objective} objective has none (allowed for: {allowed})")
        if not self.trainable:
            raise ValueError("trainable is empty: a stage must train at least one parameter group")
        for group in self.trainable:
            if group.split(".")[0] not in parts:
                raise ValueError(
                    f"trainable group {group!r} is not a part of the {self.objective} model (allowed: {', '.join(parts)})"
                )
        for part in self.optimizer.lr_scale:
            if not any(in_group(part, group) or in_group(group, part) for group in self.trainable):
                raise ValueError(f"optimizer.lr_scale part {part!r} does not train in this stage (trainable: {', '.join(self.trainable)})")
        for part, source in self.init.items():
            if part != "*" and part.split(".")[0] not in parts:
                raise ValueError(f"init part {part!r} is not a part of the {self.objective} model (allowed: *, {', '.join(parts)})")
            if source.startswith("models:/") and not MODEL_URI.match(source):
                raise ValueError(f"init source {source!r} is not a model URI (allowed: models:/NAME@ALIAS or models:/NAME/VERSION)")
        return self

    @property
    def parent_stages(self) -> list[str]:
        return sorted({s for s in self.init.values() if not s.startswith("models:/")})

    @property
    def parent_models(self) -> list[str]:
        return sorted({s for s in self.init.values() if s.startswith("models:/")})


class DataStageConfig(Strict):
    """A data stage: a model runs over the dataset it reads, and what it writes is a new DVC version of a
    dataset of its own, which later stages train on with `data: <this stage's name>`."""

    name: Name
    model: str
    """The model the stage runs: an earlier stage, or models:/NAME@ALIAS|/VERSION of a registered one."""
    data: Name | None = None
    """The data stage whose dataset it reads (default: the recipe's dataset)."""
    dataset: Name | None = None
    """The name of the dataset it writes (default: <data.name>-<this stage's name>)."""

    @field_validator("model")
    @classmethod
    def _model_source(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("models:/") and not MODEL_URI.match(value):
            raise ValueError(f"model {value!r} is not a model URI (allowed: an earlier stage's name, models:/NAME@ALIAS or models:/NAME/VERSION)")
        return value

    @property
    def parent_stages(self) -> list[str]:
        return [] if self.model is None or self.model.startswith("models:/") else [self.model]

    @property
    def parent_models(self) -> list[str]:
        return [self.model] if self.model is not None and self.model.startswith("models:/") else []


class RecaptionStageConfig(DataStageConfig):
    """Sora's descriptive re-captioning of the train videos of the dataset it reads: each caption rewritten as a rich
    description of its video (objects, motions, places, canvas; components.data.recaption). The describer is the
    Shapes world's own writer, so the stage runs no model."""

    objective: Literal["recaption"]
    model: None = None


class CapFiltStageConfig(DataStageConfig):
    """BLIP's CapFilt over the train captions of the dataset it reads: the model is a BLIP (an earlier
    blip_pretrain stage or a registered one), whose decoder captions and whose ITM head filters."""

    objective: Literal["capfilt"]
    capfilt: CapFiltConfig = CapFiltConfig()


class FeedbackStageConfig(DataStageConfig):
    """DRESS's feedback data: the model (a LLaVA-style one) answers train questions, the rule-based critic
    scores each answer and says what is wrong and how to mend it, and the dataset written holds the original
    conversations and one more per question: the answer, the feedback, then the true answer as the target."""

    objective: Literal["feedback"]
    feedback: FeedbackConfig = FeedbackConfig()


DATA_STAGE_OBJECTIVES: dict[str, tuple[type[DataStageConfig], frozenset[str]]] = {
    "capfilt": (CapFiltStageConfig, frozenset({"blip_pretrain"})),
    "feedback": (FeedbackStageConfig, LLAVA_OBJECTIVES),
    "recaption": (RecaptionStageConfig, frozenset()),
}
"""Each data stage's kind, and the objectives of the stages whose model it can run."""


Stage = Annotated[StageConfig | CapFiltStageConfig | FeedbackStageConfig | RecaptionStageConfig, Field(discriminator="objective")]
"""A training stage, or a data stage (objective capfilt, feedback or recaption) that writes a dataset for later stages."""


class GenerationEvalConfig(Strict):
    """How a text-to-video (or text-to-image) model is evaluated: the held-out denoising loss on the test videos, then
    one sample per test caption (at most evaluation.limit, of one object each) per guidance scale, read by a judge
    trained on the real train videos (components.evaluation.generation_eval)."""

    guidance_scales: list[Annotated[float, Field(ge=0, le=30)]] = [1.0, 3.0, 6.0]
    """1 is the conditional model without guidance; guidance_gain is the best other scale's accuracy minus scale 1's."""
    sampling: SamplingConfig = SamplingConfig()
    judge_steps: Annotated[int, Field(ge=1)] = 2000
    """The judge's training steps: on the Shapes world it reads shape at 0.99 on real test images after 1,500."""
    expand_prompts: bool = False
    """Expand each short test caption into a descriptive one (components.data.prompt_expansion) before generating:
    for a model trained on re-captioned videos (a recaption data stage), as Sora expands user prompts."""
    previews: Annotated[int, Field(ge=0, le=32)] = 6
    """Test captions shown in the logged sample grid (evaluation/samples.gif and .png), real videos in the first row."""

    @field_validator("guidance_scales")
    @classmethod
    def _scales(cls, value: list[float]) -> list[float]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"guidance_scales {value}: list distinct scales, e.g. [1.0, 3.0, 6.0]")
        return value


class EvaluationConfig(Strict):
    batch_size: Annotated[int, Field(ge=1)] = 64
    max_new_tokens: Annotated[int, Field(ge=1, le=256)] = 24
    limit: Annotated[int, Field(ge=1)] | None = None
    """Evaluate on at most this many test conversations (all when unset)."""
    zero_shot_templates: list[str] = ["a {}", "a photo of a {}", "an image with a {}"]
    rerank_top_k: Annotated[int, Field(ge=0, le=256)] = 16
    """Retrieval by a model with a match head (BLIP's ITM): how many of the candidates the embeddings
    rank first it re-ranks (BLIP: 256 on COCO's 5,000 images; 0: the embeddings alone)."""
    few_shot: Annotated[int, Field(ge=0, le=8)] = 0
    """In-context examples (image, question, answer) from the train split before each test question:
    Flamingo's few-shot evaluation. With few_shot > 0 the zero-shot figures are logged too (suffix _0shot)."""
    feedback_rounds: Annotated[int, Field(ge=0, le=3)] = 0
    """DRESS: after its answer to each test question, the model hears the rule-based critic's feedback
    (score, critique, refinement) and answers again, this many times; logs feedback_em_round<r> for
    every round (0: before feedback), feedback_gain, and per round feedback_fixed_round<r> and
    feedback_broken_round<r>."""
    feedback_reference: Name | None = None
    """DRESS: a stage whose model (of the same family) is evaluated with feedback too, for comparison
    (suffix _reference): the model before feedback training."""
    text_only_reference: Name | None = None
    """VILA: a stage whose LM is the text-only reference (the language_modeling stage). The test questions
    are also asked with no image, after their scene's caption (components.evaluation.text_only), of the
    output model and of a copy with this stage's LM; logs text_only_* for both (suffix _reference) and
    text_only_retained, the output's text-only exact match over the reference's."""
    generation: GenerationEvalConfig = GenerationEvalConfig()
    """A text-to-video model's evaluation: its samples' guidance scales, sampler and judge (see below)."""

    @field_validator("zero_shot_templates")
    @classmethod
    def _templates(cls, value: list[str]) -> list[str]:
        for template in value:
            if template.count("{}") != 1:
                raise ValueError(f"zero-shot template {template!r} must contain exactly one '{{}}'")
        return value


class PromotionConfig(Strict):
    thresholds: dict[str, float] = {}
    """Metric -> minimum value the candidate must reach."""
    not_worse_than_production: list[str] = []
    """Metrics on which the candidate must be at least the production version's (minus tolerance)."""
    tolerance: Annotated[float, Field(ge=0)] = 0.0
    require_approval: bool = False
    """When true, passing the gate only requests the promotion; a user with the role `approve`
    (`mmops approve`, or the dashboard's Promote page) carries it out."""


class Recipe(Strict):
    name: Name
    """The registered model name."""
    family: Literal["llava", "llava-1.5", "llava-1.6", "blip2", "minigpt4", "qwen-vl", "cogvlm", "flamingo", "clip", "unicl", "blip", "kosmos-1", "kosmos-2", "kosmos-2.5", "ofa", "vila", "dress", "uni-perceiver", "dit", "video-dit"]
    description: str = ""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    stages: list[Stage]
    output_stage: str | None = None
    """The stage whose weights become the registered model (default: the last)."""
    evaluation: EvaluationConfig = EvaluationConfig()
    promotion: PromotionConfig = PromotionConfig()
    distributed: DistributedConfig = DistributedConfig()
    """How every training stage spreads over processes and devices: strategy (ddp_spawn from inside a pipeline;
    ddp under a launcher), devices, num_nodes, precision. Default: one process on the CPU."""

    @model_validator(mode="after")
    def _stage_graph(self) -> Recipe:
        if not self.stages:
            raise ValueError("stages is empty: a recipe needs at least one stage")
        seen: list[str] = []
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stage name {stage.name!r} is used twice")
            for parent in stage.parent_stages:
                if parent not in seen:
                    earlier = ", ".join(seen) or "none"
                    raise ValueError(
                        f"stage {stage.name!r} takes weights from {parent!r}, which is not an earlier stage"
                        f" (earlier stages: {earlier}; or use models:/NAME@ALIAS)"
                    )
                if isinstance(self.stage(parent), DataStageConfig):
                    raise ValueError(f"stage {stage.name!r} takes weights from {parent!r}, a data stage, which writes a dataset and no weights")
            if isinstance(stage, DataStageConfig) and stage.parent_stages:
                runs = DATA_STAGE_OBJECTIVES[stage.objective][1]
                if self.stage(stage.model).objective not in runs:
                    raise ValueError(
                        f"data stage {stage.name!r}: model {stage.model!r} is a {self.stage(stage.model).objective} stage;"
                        f" {stage.objective} runs the model of a {', '.join(sorted(runs))} stage"
                    )
            if stage.data is not None:
                data_stages = [s.name for s in self.data_stages if s.name in seen]
                if stage.data not in data_stages:
                    raise ValueError(
                        f"stage {stage.name!r} reads data from {stage.data!r}, which is not an earlier data stage"
                        f" (earlier data stages: {', '.join(data_stages) or 'none'})"
                    )
            seen.append(stage.name)
        written = [self.data.name] + [self.dataset_name(s) for s in self.data_stages]
        for stage in self.data_stages:
            if not NAME.match(self.dataset_name(stage)):
                raise ValueError(f"data stage {stage.name!r} writes {self.dataset_name(stage)!r}, which is not a name (at most 63 characters); set its dataset")
        for name in written:
            if written.count(name) > 1:
                raise ValueError(f"dataset name {name!r} is written twice (the recipe's data and its data stages' datasets must differ)")
        capfilt = [s.name for s in self.data_stages if s.objective == "capfilt"]
        if capfilt and self.model.blip is None:
            raise ValueError(f"data stage {capfilt[0]!r} runs CapFilt with a BLIP model, but model.blip is not set")
        if self.output_stage is not None and self.output_stage not in seen:
            raise ValueError(f"output_stage {self.output_stage!r} is not a stage (stages: {', '.join(seen)})")
        if self.model.qformer is None:
            needing = [s.name for s in self.stages if s.objective == "qformer_pretrain"]
            if needing:
                raise ValueError(f"stage {needing[0]!r} trains a Q-Former (qformer_pretrain), but model.qformer is not set")
        if self.model.blip is None:
            needing = [s.name for s in self.stages if s.objective == "blip_pretrain"]
            if needing:
                raise ValueError(f"stage {needing[0]!r} trains BLIP (blip_pretrain), but model.blip (dim, depth, heads, ...) is not set")
        if self.model.uni_perceiver is None:
            needing = [s.name for s in self.stages if s.objective == "uni_perceiver"]
            if needing:
                raise ValueError(f"stage {needing[0]!r} trains Uni-Perceiver, but model.uni_perceiver (dim, depth, heads, ...) is not set")
        self._ofa_parts_are_set()
        self._video_parts_are_set()
        if self.model.flamingo is None:
            needing = [s.name for s in self.stages if s.objective in FLAMINGO_OBJECTIVES]
            if needing:
                raise ValueError(f"stage {needing[0]!r} trains a Flamingo model, but model.flamingo is not set")
        for part, (present, missing) in OPTIONAL_PARTS.items():
            if present(self.model):
                continue
            for stage in self.training_stages:
                if any(in_group(p, part) for p in [*stage.trainable, *stage.init]):
                    raise ValueError(f"stage {stage.name!r} names the part {part}, but {missing}")
        final = self.final_stage
        if final.objective not in OUTPUT_OBJECTIVES:
            allowed = ", ".join(sorted(OUTPUT_OBJECTIVES))
            raise ValueError(
                f"the output stage {final.name!r} must produce a model the pipeline can evaluate and serve ({allowed}), not {final.objective}"
            )
        self._gate_metrics_exist(final.objective)
        self._text_only_reference_is_a_language_model(final)
        self._feedback_evaluation_fits(final)
        self._gated_metrics_are_logged(final)
        if self.evaluation.few_shot and (final.objective not in ANSWERING_OBJECTIVES - OFA_OBJECTIVES or self.model.anyres_pinpoints is not None):
            raise ValueError(
                f"evaluation.few_shot needs a model that reads several images in one prompt (a LLaVA-style model on square input, or Flamingo);"
                f" the output stage is {final.objective}{' with anyres_pinpoints' if self.model.anyres_pinpoints else ''} (allowed: 0)"
            )
        self._pages_are_there(final)
        located = [s.name for s in self.training_stages if s.location_tokens]
        if located and self.data.tokenizer.location_bins is None:
            raise ValueError(f"stage {located[0]!r} writes location tokens, but data.tokenizer.location_bins is not set (the tokenizer has none)")
        mixed = [s.name for s in self.training_stages if s.text_only_mix > 0]
        if mixed and self.model.anyres_pinpoints is not None:
            raise ValueError(f"stage {mixed[0]!r} mixes in text-only items with a blank square image; model.anyres_pinpoints reads images as views (allowed there: text_only_mix 0)")
        interleaved = [s.name for s in self.training_stages if s.objective == "llava_interleaved"]
        if interleaved and self.model.anyres_pinpoints is not None:
            raise ValueError(f"stage {interleaved[0]!r} splices several images into one sequence; model.anyres_pinpoints splits one image into views (allowed there: no anyres_pinpoints)")
        return self

    def _video_parts_are_set(self) -> None:
        """Video stages need the videos, the autoencoder (and the transformer) set, and every video size must cut into
        latents and then into patches."""
        video = [s for s in self.training_stages if s.objective in VIDEO_OBJECTIVES]
        if not video:
            return
        first = video[0].name
        if self.data.videos is None:
            raise ValueError(f"stage {first!r} trains on videos, but data.videos is not set (the dataset has none)")
        autoencoder = self.model.video_autoencoder
        if autoencoder is None:
            raise ValueError(f"stage {first!r} needs the video compression network: set model.video_autoencoder (latent_channels, hidden, downsample, ...)")
        diffusion = self.model.diffusion
        denoising = [s.name for s in video if s.objective == "diffusion"]
        if denoising and diffusion is None:
            raise ValueError(f"stage {denoising[0]!r} trains a diffusion transformer, but model.diffusion (dit, schedule, prediction, ...) is not set")
        r, d = autoencoder.time_downsample, autoencoder.downsample
        patch = d * (diffusion.dit.patch_size if diffusion else 1)
        for frames in self.data.videos.frames:
            if (frames - 1) % r:
                raise ValueError(f"data.videos.frames: {frames} frames do not compress by model.video_autoencoder.time_downsample={r} (allowed: 1 + k * {r})")
            if diffusion and (1 + (frames - 1) // r) % diffusion.dit.patch_frames:
                raise ValueError(f"data.videos.frames: {frames} frames make {1 + (frames - 1) // r} latent frames, which do not cut into patches of model.diffusion.dit.patch_frames={diffusion.dit.patch_frames}")
        for height, width in self.data.videos.canvases:
            if height % patch or width % patch:
                raise ValueError(f"data.videos.canvases: {height} x {width} does not cut into {patch}-pixel patches (the autoencoder's downsample times the transformer's patch_size; allowed: multiples of {patch})")

    def _ofa_parts_are_set(self) -> None:
        for stage in self.training_stages:
            if stage.objective == "vq_tokenizer" and self.model.vq is None:
                raise ValueError(f"stage {stage.name!r} trains an image tokenizer (vq_tokenizer), but model.vq (codebook_size, code_dim, ...) is not set")
            if stage.objective != "ofa_instruct":
                continue
            if self.model.ofa is None:
                raise ValueError(f"stage {stage.name!r} trains OFA (ofa_instruct), but model.ofa (dim, encoder_depth, decoder_depth, heads, ...) is not set")
            if self.data.tokenizer.coordinate_bins is None:
                raise ValueError(f"stage {stage.name!r} trains OFA, which writes boxes as coordinate bins, but data.tokenizer.coordinate_bins is not set")
            if (stage.tasks.get("infilling", 0) > 0 or not stage.tasks) and self.model.vq is None:
                raise ValueError(f"stage {stage.name!r} trains OFA's image infilling, whose answers are image codes, but model.vq is not set (or give tasks without infilling)")
            if self.model.vq is not None and self.model.vision.image_size % (4 * self.model.vq.downsample):
                raise ValueError(f"model.vq.downsample={self.model.vq.downsample}: the code grid of a {self.model.vision.image_size}-pixel image has no middle quarter (allowed: image_size / downsample a multiple of 4)")

    def _pages_are_there(self, final: StageConfig) -> None:
        reading = [s.name for s in self.training_stages if s.corpus == "pages"]
        if reading and self.data.pages is None:
            raise ValueError(f"stage {reading[0]!r} reads corpus 'pages', but data.pages is not set (the dataset has no text pages)")
        if final.corpus != "pages":
            return
        if final.objective not in LLAVA_OBJECTIVES:
            raise ValueError(f"the output stage {final.name!r} reads pages as a {final.objective} model; a page reader answers the task prompts (allowed: {', '.join(sorted(ONE_IMAGE_OBJECTIVES))})")
        cfg = self.evaluation
        if cfg.few_shot or cfg.feedback_rounds or cfg.text_only_reference is not None:
            raise ValueError("a page reader is evaluated on its pages' text blocks and markdown; evaluation.few_shot, feedback_rounds and text_only_reference ask scene questions (allowed: 0, 0, unset)")

    def _gated_metrics_are_logged(self, final: StageConfig) -> None:
        """A gate on a metric that only an evaluation option logs needs that option."""
        reads_pages = final.corpus == "pages"
        for name in [*self.promotion.thresholds, *self.promotion.not_worse_than_production]:
            if reads_pages and name not in READING_METRICS:
                raise ValueError(f"promotion gates on {name!r}, which a page reader does not log: it is evaluated on reading its pages (allowed: {', '.join(READING_METRICS)})")
            if not reads_pages and name in READING_METRICS:
                raise ValueError(f"promotion gates on {name!r}, which only an output stage with corpus 'pages' makes the evaluation log")
        needs = (
            ("text_only_", self.evaluation.text_only_reference is not None, "evaluation.text_only_reference"),
            ("feedback_", self.evaluation.feedback_rounds > 0, "evaluation.feedback_rounds > 0"),
            (GROUNDED_CAPTION_METRICS, final.location_tokens, "an output stage with location_tokens"),
            (OFA_METRICS, final.objective in OFA_OBJECTIVES, "an OFA output stage (ofa_instruct)"),
        )
        scales = self.evaluation.generation.guidance_scales
        tags = {scale_tag(s) for s in scales}
        for name in [*self.promotion.thresholds, *self.promotion.not_worse_than_production]:
            if final.objective in GENERATIVE_OBJECTIVES and name.startswith("generation_") and "_g" in name and name.rsplit("_", 1)[1] not in tags:
                raise ValueError(f"promotion gates on {name!r}, but evaluation.generation.guidance_scales is {scales}")
            if name == "guidance_gain" and (1.0 not in scales or len(scales) < 2):
                raise ValueError(f"promotion gates on 'guidance_gain', the gain over scale 1, but evaluation.generation.guidance_scales is {scales} (list 1.0 and another)")
            for prefix, logged, what in needs:
                if name.startswith(prefix) and not logged:
                    raise ValueError(f"promotion gates on {name!r}, which only {what} makes the evaluation log")

    def _feedback_evaluation_fits(self, final: StageConfig) -> None:
        rounds, reference = self.evaluation.feedback_rounds, self.evaluation.feedback_reference
        if not rounds:
            if reference is not None:
                raise ValueError("evaluation.feedback_reference is evaluated with feedback, but evaluation.feedback_rounds is 0 (allowed: 1 to 3)")
            return
        if final.objective not in LLAVA_OBJECTIVES:
            raise ValueError(f"evaluation.feedback_rounds asks a LLaVA-style model again after feedback; the output stage is {final.objective} (allowed: {', '.join(sorted(LLAVA_OBJECTIVES))})")
        if reference is not None:
            stage = next((s for s in self.training_stages if s.name == reference), None)
            if stage is None or stage.objective not in LLAVA_OBJECTIVES or stage.name == final.name:
                others = [s.name for s in self.training_stages if s.objective in LLAVA_OBJECTIVES and s.name != final.name]
                raise ValueError(f"evaluation.feedback_reference {reference!r} is not another LLaVA-style training stage (allowed: {', '.join(others) or 'none'})")

    def _text_only_reference_is_a_language_model(self, final: StageConfig) -> None:
        reference = self.evaluation.text_only_reference
        if reference is None:
            return
        if final.objective not in LLAVA_OBJECTIVES:
            raise ValueError(f"evaluation.text_only_reference asks a LLaVA-style model questions with no image; the output stage is {final.objective} (allowed: {', '.join(sorted(LLAVA_OBJECTIVES))})")
        stage = next((s for s in self.training_stages if s.name == reference), None)
        if stage is None or "language_model" not in MODEL_PARTS[stage.objective]:
            with_lm = [s.name for s in self.training_stages if "language_model" in MODEL_PARTS[s.objective]]
            raise ValueError(f"evaluation.text_only_reference {reference!r} is not a training stage with a language model (allowed: {', '.join(with_lm)})")

    def _gate_metrics_exist(self, objective: str) -> None:
        """A gate can only judge what the output model's evaluation logs."""
        if objective in CONTRASTIVE_OBJECTIVES:
            known, allowed = is_contrastive_metric, CONTRASTIVE_METRICS
        elif objective in GENERATIVE_OBJECTIVES:
            known, allowed = is_generation_metric, GENERATION_METRICS
        else:
            known, allowed = is_answer_metric, ANSWER_METRICS
        gate = self.promotion
        for field, names in (("thresholds", list(gate.thresholds)), ("not_worse_than_production", gate.not_worse_than_production)):
            for name in names:
                if not known(name):
                    raise ValueError(
                        f"promotion.{field}: {name!r} is not a metric the evaluation of a {objective} model logs"
                        f" (allowed: {', '.join(allowed)})"
                    )

    @model_validator(mode="after")
    def _pretrained_towers(self) -> Recipe:
        """What a pretrained tower needs beyond its config (which ModelConfig reads): its weights,
        and for an LM, its own tokenizer."""
        for field, directory in (("model.vision", self.model.vision.pretrained), ("model.language_model", self.model.language_model.pretrained)):
            if directory is not None and not has_safetensors(directory):
                raise ValueError(f"{field}.pretrained: {directory} has no *.safetensors weights (pickled .bin weights are refused)")
        for index, stage in enumerate(self.stages):
            if isinstance(stage, StageConfig) and stage.region_weight > 0 and self.model.vision.pretrained is not None:
                raise ValueError(
                    f"stages.{index}.region_weight: region-word alignment trains mmops' own vision tower; a pretrained "
                    "one (model.vision.pretrained) already reads its patches (allowed: 0)"
                )
        if self.model.language_model.pretrained is not None and self.data.tokenizer.pretrained is None:
            raise ValueError(
                "model.language_model.pretrained reads token ids with its own vocabulary: set data.tokenizer.pretrained"
                f" to the directory of its tokenizer (e.g. {self.model.language_model.pretrained})"
            )
        return self

    @property
    def parent_models(self) -> list[str]:
        """The registered versions (models:/...) some stage starts from."""
        return sorted({uri for stage in self.stages for uri in stage.parent_models})

    @property
    def training_stages(self) -> list[StageConfig]:
        return [s for s in self.stages if isinstance(s, StageConfig)]

    @property
    def data_stages(self) -> list[DataStageConfig]:
        return [s for s in self.stages if isinstance(s, DataStageConfig)]

    def dataset_name(self, stage: DataStageConfig) -> str:
        """The dataset a data stage writes."""
        return stage.dataset or f"{self.data.name}-{stage.name}"

    @property
    def final_stage(self) -> StageConfig:
        name = self.output_stage or self.stages[-1].name
        return next(s for s in self.stages if s.name == name)

    def stage(self, name: str) -> StageConfig | DataStageConfig:
        return next(s for s in self.stages if s.name == name)


class LoadedRecipe(BaseModel):
    """A validated recipe with where it came from and its content hash."""

    model_config = ConfigDict(frozen=True)

    recipe: Recipe
    path: Path
    text: str
    sha256: str


def with_training_settings(loaded: LoadedRecipe, distributed: Mapping[str, str | int], sources: Mapping[str, str]) -> LoadedRecipe:
    """The recipe with the settings' training fields (Settings.distributed: a machine's or a pool's accelerator, devices,
    nodes, strategy, precision) in place of its own `distributed:` ones, checked again as a whole; the recipe's text
    and hash stay its own. A combination the recipe cannot train with names the settings and where they came from."""
    if not distributed:
        return loaded
    raw = loaded.recipe.model_dump(mode="json", exclude_unset=True)
    raw["distributed"] = {**raw.get("distributed", {}), **distributed}
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        given = ", ".join(f"{name}={value} ({sources.get(name, 'settings')})" for name, value in distributed.items())
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'recipe'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise RecipeError(f"{loaded.path}: with the training settings {given}: {reasons}") from None
    return loaded.model_copy(update={"recipe": recipe})


BASE_KEY = "base"
"""A recipe may name another recipe file it extends: `base: llava.yaml` (relative to its own
directory). Mappings merge key by key, the extending recipe winning; lists and scalars are replaced;
a key set to null (`vqa_exact_match: null` under promotion.thresholds) is taken out of the base's mapping."""


def load_recipe(path: str | Path) -> LoadedRecipe:
    """Read and validate a recipe; raise RecipeError naming the file, the field and what is allowed."""
    path = Path(path)
    raw, chain = _read_with_bases(path, ())
    if len(chain) == 1:
        text = chain[0][1]
    else:  # what ran is the merged recipe: record it whole, so its hash changes when a base does
        extends = " <- ".join(str(p) for p, _ in chain)
        text = f"# merged from {extends}\n" + yaml.safe_dump(raw, sort_keys=False, width=120)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(_describe(path, exc, [p for p, _ in chain[1:]])) from None
    return LoadedRecipe(recipe=recipe, path=path.resolve(), text=text, sha256=hashlib.sha256(text.encode()).hexdigest())


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> tuple[dict, list[tuple[Path, str]]]:
    """The recipe at `path` merged over its bases, and the files read (path, text), `path` first."""
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found" + (f" (the base of {seen[-1]})" if seen else ""))
    if path.resolve() in seen:
        cycle = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise RecipeError(f"{seen[-1]}: field base: recipes extend each other in a cycle ({cycle})")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of fields (name, family, stages, ...), got {type(raw).__name__}")
    base = raw.pop(BASE_KEY, None)
    if base is None:
        return raw, [(path, text)]
    if not isinstance(base, str) or not base.strip():
        raise RecipeError(f"{path}: field base: {base!r} is not a file name (allowed: a recipe path relative to {path.parent})")
    base_raw, chain = _read_with_bases(path.parent / base, (*seen, path.resolve()))
    return _merge(base_raw, raw), [(path, text), *chain]


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if value is None and key in merged:
            del merged[key]
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(path: Path, exc: ValidationError, bases: list[Path] | None = None) -> str:
    extends = f" (extending {', '.join(str(b) for b in bases)})" if bases else ""
    lines = [f"{path}{extends}: invalid recipe ({exc.error_count()} error{'s' if exc.error_count() > 1 else ''})"]
    for error in exc.errors():
        loc, stage_model = _untagged(error["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1], stage_model) + ([BASE_KEY] if len(loc) == 1 else [])
            message = f"unknown field (allowed: {', '.join(sorted(allowed))})" if allowed else "unknown field"
        lines.append(f"  {field}: {message}")
    return "\n".join(lines)


def _untagged(loc: tuple) -> tuple[tuple, type[BaseModel]]:
    """A stage's error location without the tag pydantic adds for the union of stage kinds
    (stages.0.capfilt.threshold -> stages.0.threshold), and the kind of stage the tag chose."""
    if len(loc) > 2 and loc[0] == "stages" and isinstance(loc[1], int) and isinstance(loc[2], str) and (
        loc[2] in DATA_STAGE_OBJECTIVES or loc[2] in Objective.__args__
    ):
        return loc[:2] + loc[3:], DATA_STAGE_OBJECTIVES[loc[2]][0] if loc[2] in DATA_STAGE_OBJECTIVES else StageConfig
    return loc, StageConfig


def _allowed_keys(loc: tuple, stage_model: type[BaseModel] = StageConfig) -> list[str]:
    """The field names of the model at a location in the recipe, for 'unknown field' errors."""
    model: type[BaseModel] | None = Recipe
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        model = stage_model if part == "stages" and model is Recipe else _model_in(annotation)
    return sorted(model.model_fields) if model else []


def _model_in(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None
