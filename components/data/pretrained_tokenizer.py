"""A pretrained LM's own tokenizer as the dataset's tokenizer, instead of a BPE trained on the corpus.

A pretrained LM's embedding rows mean its tokenizer's tokens, so a recipe with a pretrained LM takes
the tokenizer.json from the LM's directory (`data.tokenizer.pretrained`). mmops' special tokens
(<pad>, <s>, </s>, <image>) are added where the tokenizer lacks them, as special tokens after its
vocabulary; the LM's embeddings are resized to match (components/models/hf_backbones.py). A
Llama-family tokenizer already has <s> and </s>, so the LM's own sequence boundaries are used; for
one that lacks them (Qwen's) they are new tokens, learned in the stages that train the LM.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tokenizers import AddedToken, Tokenizer

from components.data.errors import DataError
from components.data.tokenizer import SPECIAL_TOKENS, TextTokenizer

TOKENIZER_JSON = "tokenizer.json"


def pretrained_tokenizer_file(directory: Path) -> Path:
    """The directory's tokenizer.json (a fast HF tokenizer), or a DataError saying what is missing."""
    path = Path(directory) / TOKENIZER_JSON
    if not Path(directory).is_dir():
        raise DataError(f"{directory} does not exist (a local HF directory with a {TOKENIZER_JSON})")
    if not path.is_file():
        raise DataError(f"{directory} has no {TOKENIZER_JSON} (mmops reads fast HF tokenizers only)")
    return path


def tokenizer_sha256(directory: Path) -> str:
    return hashlib.sha256(pretrained_tokenizer_file(directory).read_bytes()).hexdigest()


def tokenizer_from_pretrained(directory: Path) -> TextTokenizer:
    """The directory's tokenizer with mmops' special tokens added where missing."""
    path = pretrained_tokenizer_file(directory)
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust library raises a bare Exception for bad JSON
        raise DataError(f"{path} is not a valid tokenizer.json: {exc}") from None
    # encode() must return every id of the text: no padding or truncation a tokenizer.json may carry
    tokenizer.no_padding()
    tokenizer.no_truncation()
    missing = [token for token in SPECIAL_TOKENS if tokenizer.token_to_id(token) is None]
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in missing])
    vocabulary = tokenizer.get_vocab(with_added_tokens=True)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if max(vocabulary.values()) + 1 != size:
        # the model's embedding table is sized by the vocabulary: every id must index a row of it
        raise DataError(f"{path}: token ids run to {max(vocabulary.values())} but the vocabulary has {size} entries; ids must be contiguous")
    return TextTokenizer(tokenizer, source=str(path))
