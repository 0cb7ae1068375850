"""Prompt expansion: a short user prompt rewritten as the long, descriptive captions a re-captioned model trained on.

Sora expands short prompts with a language model before generating; in the Shapes world the descriptive captions
follow a grammar (components.data.shapes_videos.descriptive_caption), so a rule-based writer does it: each object
phrase of the short caption ('a large red square moves left', 'a small circle changes from blue to green',
'a red square at the top left') becomes that caption's sentence for it, and the canvas sentence of the size to be
generated follows. A phrase it does not recognise is kept as a sentence of its own, so nothing the user wrote is lost.
"""

from __future__ import annotations

import re

from components.data.shapes_videos import canvas_sentence

_PHRASE = re.compile(
    r"^an? (?P<size>small|large) (?:(?P<colour>[a-z]+) )?(?P<shape>circle|square|triangle|diamond)"
    r"(?: (?P<doing>moves (?:left|right|up|down)|turns|stays still|changes from [a-z]+ to [a-z]+|at the [a-z ]+))?$"
)


def object_phrases(prompt: str) -> list[str]:
    """'a red square moves left and a small blue circle stays still' -> its two phrases (', ' and ' and ' part them)."""
    text = " ".join(prompt.strip().rstrip(".").lower().split())
    return [p.strip() for p in re.split(r", | and ", text) if p.strip()]


def expand_phrase(phrase: str) -> str:
    found = _PHRASE.match(phrase)
    if found is None:
        return phrase[:1].upper() + phrase[1:] + "."
    size, colour, shape, doing = found["size"], found["colour"], found["shape"], found["doing"] or ""
    named = f"A {size} {colour + ' ' if colour else ''}{shape}"
    if doing.startswith("changes"):
        return f"{named} {doing} halfway through."
    if doing == "turns":
        return f"{named} turns clockwise in place."
    if doing.startswith("at the"):
        return f"{named} is {doing}."
    return f"{named} {doing}." if doing else f"{named}."


def expand_prompt(prompt: str, frames: int, width: int, height: int) -> str:
    """The descriptive caption of `prompt` for a video of that size: each object's sentence, then the canvas's."""
    phrases = object_phrases(prompt)
    if not phrases:
        raise ValueError("the prompt is empty: describe the shapes to generate, e.g. 'a large red square moves left'")
    return " ".join([*(expand_phrase(p) for p in phrases), canvas_sentence(frames, width, height, min(len(phrases), 3))])
