"""A small byte-level BPE tokenizer trained on the dataset's own text.

Byte-level BPE never meets an unknown character, and decoding is lossless, so
`decode(encode(s)) == s` for any plain string. Digits are split off one by one
before BPE so numbers (counts, box coordinates) are spelled digit by digit and
`<image>` is a special token: it is always one id and never split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from components.data.errors import DataError

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN = "<pad>", "<s>", "</s>", "<image>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN)
_BYTE_ALPHABET_SIZE = 256


class TextTokenizer:
    """A `tokenizers.Tokenizer` with our special tokens and no automatic bos/eos."""

    def __init__(self, tokenizer: Tokenizer, source: str = "<in memory>") -> None:
        missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
        if missing:
            raise DataError(
                f"tokenizer {source} lacks the special tokens {missing}; "
                f"it needs all of {list(SPECIAL_TOKENS)} (train it with train_tokenizer)"
            )
        self._tokenizer = tokenizer
        self._ids = {t: int(tokenizer.token_to_id(t)) for t in SPECIAL_TOKENS}

    @property
    def pad_id(self) -> int:
        return self._ids[PAD_TOKEN]

    @property
    def bos_id(self) -> int:
        return self._ids[BOS_TOKEN]

    @property
    def eos_id(self) -> int:
        return self._ids[EOS_TOKEN]

    @property
    def image_id(self) -> int:
        return self._ids[IMAGE_TOKEN]

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; adds no bos/eos."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=skip_special)

    def token(self, token_id: int) -> str | None:
        """The vocabulary entry of one id (byte-level symbols, e.g. 'Ġred')."""
        return self._tokenizer.id_to_token(token_id)

    def add_words(self, words: Sequence[str]) -> None:
        """Add whole tokens that are never split and, unlike special tokens, survive decoding
        (KOSMOS-2's location tokens and grounding markup)."""
        self._tokenizer.add_tokens(list(words))

    def vocabulary(self) -> dict[str, int]:
        """Every token and its id, special tokens included."""
        return self._tokenizer.get_vocab(with_added_tokens=True)

    def save(self, path: Path) -> None:
        """Write tokenizer.json to `path` (a file path; parent folders are created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tokenizer.save(str(path))

    @classmethod
    def load(cls, path: Path) -> TextTokenizer:
        path = Path(path)
        if not path.is_file():
            raise DataError(
                f"tokenizer file not found: {path}; train one with train_tokenizer() "
                "and save it with TextTokenizer.save()"
            )
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust library raises a bare Exception for bad JSON
            raise DataError(f"{path} is not a valid tokenizer.json: {exc}") from exc
        return cls(tokenizer, source=str(path))


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> TextTokenizer:
    """Train byte-level BPE on `texts`; the vocabulary holds the 256 bytes, the special
    tokens and up to vocab_size minus those in merges."""
    smallest = _BYTE_ALPHABET_SIZE + len(SPECIAL_TOKENS)
    if vocab_size < smallest:
        raise DataError(
            f"vocab_size={vocab_size} is too small: byte-level BPE needs {_BYTE_ALPHABET_SIZE} "
            f"byte tokens plus {len(SPECIAL_TOKENS)} special tokens, so at least {smallest}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return TextTokenizer(tokenizer)
