"""UniCL's image-label view of image-caption data (Florence).

UniCL trains one contrastive space on image-label data (classification: the
text is a prompt of the class name) and image-text data (captions) together,
and makes every pair that shares a label a positive for the others. In the
Shapes world the scenes of a single object are the image-label data, labelled
by its colour and shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.data.errors import DataError


@dataclass(frozen=True)
class LabelPrompts:
    """UniCL's image-label view of a captions file: how often a labelled scene's text is a prompt."""

    fraction: float
    """The probability that a single-object scene's text is a label prompt rather than its caption."""
    templates: tuple[str, ...]
    """Prompt templates, each with one '{}' for the class name; one is drawn per item."""

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise DataError(f"label prompts: fraction {self.fraction} must be in (0, 1]")
        if not self.templates or any(t.count("{}") != 1 for t in self.templates):
            raise DataError(f"label prompts: templates {list(self.templates)} must be non-empty, each with exactly one '{{}}'")


def object_class(sample: dict) -> str | None:
    """The class of a scene of one object, 'colour shape'; None for other scenes."""
    objects = sample.get("scene", {}).get("objects", [])
    return f"{objects[0]['colour']} {objects[0]['shape']}" if len(objects) == 1 else None
