"""Build a dataset directory: the Shapes world, or a source's imported samples, plus the tokenizer
trained on its corpus (or a pretrained LM's own tokenizer, see pretrained_tokenizer.py).

The Shapes world is what the DVC stage runs (`mmops data generate`); an imported dataset is
written and `dvc add`-ed. Either way the tokenizer is versioned with the data it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from components.data.conversation import corpus_texts
from components.data.data_source import DataSource
from components.data.importer import Opener, import_dataset
from components.data.llava_json import load_llava_json
from components.data.coordinate_bins import CoordinateBins
from components.data.location_tokens import LocationGrid, grounding_words
from components.data.pages_dataset import page_captions_file, reading_file
from components.data.pretrained_tokenizer import tokenizer_from_pretrained
from components.data.shapes_dataset import generate_shapes_dataset
from components.data.shapes_world import ShapesConfig
from components.data.text_pages import PagesConfig
from components.data.shapes_videos import VideosConfig
from components.data.tokenizer import TextTokenizer, train_tokenizer

TOKENIZER_FILE = "tokenizer.json"


def build_shapes_dataset(
    config: ShapesConfig,
    vocab_size: int,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    pretrained_tokenizer: Path | None = None,
    location_bins: int | None = None,
    pages: PagesConfig | None = None,
    coordinate_bins: int | None = None,
    videos: VideosConfig | None = None,
) -> dict:
    """`pretrained_tokenizer`: a local HF directory whose tokenizer the dataset takes instead of
    training one of `vocab_size` tokens on its corpus; `location_bins`: KOSMOS-2's location tokens of a
    bins x bins grid and the grounding markup are added to the tokenizer as whole tokens; `pages`: the
    dataset also holds text pages (KOSMOS-2.5, see pages_dataset), whose text the tokenizer learns too;
    `coordinate_bins`: OFA's location tokens, one per quantised coordinate (see coordinate_bins); `videos`: the
    dataset also holds videos of moving shapes (see videos_dataset). Their captions are not in the tokenizer's corpus:
    the tokenizer stays the scenes', so a text tower trained on the scenes (a registered CLIP) reads the videos'
    captions with the ids it knows, and conditions a video generator."""
    # read first, so that a bad directory fails before any scene is drawn
    tokenizer = tokenizer_from_pretrained(pretrained_tokenizer) if pretrained_tokenizer is not None else None
    summary = generate_shapes_dataset(config, out_dir, progress, pages, videos)
    files = [out_dir / "captions_train.json", out_dir / "instruct_train.json"]
    if pages is not None:
        files += [page_captions_file(out_dir, "train"), reading_file(out_dir, "train")]
    _write_tokenizer(out_dir, tokenizer, files, vocab_size, location_bins, coordinate_bins)
    return summary


def build_imported_dataset(
    source: DataSource, open_file: Opener, vocab_size: int, out_dir: Path, progress: Callable[[int, int], None] | None = None,
    pretrained_tokenizer: Path | None = None, location_bins: int | None = None, coordinate_bins: int | None = None,
) -> dict:
    """A dataset folder from a source's LLaVA JSON, COCO captions or shards (see importer), with its tokenizer:
    trained on the imported train samples, or a pretrained LM's own."""
    tokenizer = tokenizer_from_pretrained(pretrained_tokenizer) if pretrained_tokenizer is not None else None
    meta = import_dataset(source, open_file, out_dir, progress)
    files = [path for path in (out_dir / "captions_train.json", out_dir / "instruct_train.json") if path.is_file()]
    _write_tokenizer(out_dir, tokenizer, files, vocab_size, location_bins, coordinate_bins)
    return meta


def _write_tokenizer(out_dir: Path, tokenizer: TextTokenizer | None, corpus: list[Path], vocab_size: int,
                     location_bins: int | None, coordinate_bins: int | None) -> None:
    """The given tokenizer, or one of `vocab_size` trained on the corpus files' text, with the location tokens asked for."""
    if tokenizer is None:
        tokenizer = train_tokenizer(corpus_texts([sample for path in corpus for sample in load_llava_json(path)]), vocab_size)
    if location_bins is not None:
        tokenizer.add_words(grounding_words(LocationGrid(location_bins)))
    if coordinate_bins is not None:
        tokenizer.add_words(CoordinateBins(coordinate_bins).tokens)
    tokenizer.save(out_dir / TOKENIZER_FILE)


def load_dataset_tokenizer(dataset_dir: Path) -> TextTokenizer:
    return TextTokenizer.load(dataset_dir / TOKENIZER_FILE)
