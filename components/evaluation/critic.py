"""A rule-based critic of Shapes answers (DRESS's natural-language feedback, from the ground truth).

DRESS asks GPT-4 to score a response, say what is wrong with it (critique) and how
to make it better (refinement). In the Shapes world the ground truth is known, so a
critic of rules can do both: it scores an answer from 0 to 10 against the truth and
says, per question type, what is wrong and where to look, without giving the answer
where the type allows (colours, shapes, counts, boxes; a yes/no or left/right answer
that is wrong can only be told to flip).
"""

from __future__ import annotations

from dataclasses import dataclass

from components.data.shapes_annotations import box_iou, parse_box

MAX_SCORE = 10
GROUNDED = 0.5
"""A box at this IoU with the truth or more is correct, as grounding_iou50 counts it."""


@dataclass(frozen=True)
class Feedback:
    score: int
    """0 (wrong) to MAX_SCORE (right); a box scores its IoU in tenths."""
    critique: str
    refinement: str
    correct: bool
    """As the evaluation counts it: the exact answer, or a box at IoU >= 0.5."""

    def as_turn(self) -> str:
        """The user's next turn: the feedback, then the request to answer again."""
        return f"Score: {self.score}/{MAX_SCORE}. {self.critique} {self.refinement} Answer the question again."


def _normal(text: str) -> str:
    return text.strip().lower().rstrip(".").strip()


def critique(question_type: str, answer: str, truth: str) -> Feedback:
    """The critic's feedback on `answer` to a question of `question_type` whose true answer is `truth`."""
    if question_type == "grounding":
        return _box(answer, truth)
    given, right = _normal(answer), _normal(truth)
    if given == right:
        return Feedback(MAX_SCORE, "The answer is correct.", "Keep it.", True)
    if not given:
        return Feedback(0, "There is no answer.", "Answer the question.", False)
    if question_type == "count":
        return _count(given, right)
    if question_type == "colour":
        return Feedback(0, f"The colour is wrong: it is not {given}.", "Look at the colour of the object again.", False)
    if question_type == "shape":
        return Feedback(0, f"The shape is wrong: it is not a {given}.", "Look at the outline of the object again.", False)
    # existence (yes/no) and position (left/right): two answers, so a wrong one can only flip
    return Feedback(0, f"The answer is wrong: it is not {given}.", "Give the other answer.", False)


def _count(given: str, right: str) -> Feedback:
    if not given.isdigit():
        return Feedback(0, "The answer is not a number.", "Count the shapes and answer with a number.", False)
    guess, truth = int(given), int(right)
    off = abs(guess - truth)
    direction = "more" if truth > guess else "fewer"
    return Feedback(max(0, MAX_SCORE - 4 * off), f"The count is wrong: there are {direction} than {guess}.", "Count the shapes again.", False)


def _box(answer: str, truth: str) -> Feedback:
    given, right = parse_box(answer), parse_box(truth)
    if right is None:
        raise ValueError(f"the true answer {truth!r} of a grounding question is not a box [[x1,y1,x2,y2]]")
    if given is None:
        return Feedback(0, "The answer is not a box.", "Answer with a bounding box [[x1,y1,x2,y2]].", False)
    iou = box_iou(given, right)
    score = round(MAX_SCORE * iou)
    if iou >= GROUNDED:
        return Feedback(score, f"The box is right (overlap {iou:.2f}).", "Keep it.", True)
    return Feedback(score, f"The box is off (overlap {iou:.2f}).", _box_hint(given, right), False)


def _box_hint(given, right) -> str:
    """Which way the box should move, and whether it should grow or shrink."""
    (gx1, gy1, gx2, gy2), (rx1, ry1, rx2, ry2) = given, right
    dx, dy = (rx1 + rx2 - gx1 - gx2) / 2, (ry1 + ry2 - gy1 - gy2) / 2
    width = max(gx2 - gx1, 1)
    moves = []
    if abs(dx) > width / 4:
        moves.append("right" if dx > 0 else "left")
    if abs(dy) > width / 4:
        moves.append("down" if dy > 0 else "up")
    area, true_area = (gx2 - gx1) * (gy2 - gy1), (rx2 - rx1) * (ry2 - ry1)
    size = "make it larger" if true_area > 1.5 * area else "make it smaller" if area > 1.5 * true_area else ""
    parts = ([f"Move it {' and '.join(moves)}"] if moves else []) + ([size] if size else [])
    return (", ".join(parts) + ".").capitalize() if parts else "Look at the object's edges again."
