"""The rule-based critic: a score against the ground truth, what is wrong, and how to mend it."""

import pytest

from components.evaluation.critic import MAX_SCORE, critique


def test_a_right_answer_scores_full_marks_whatever_its_case_or_full_stop():
    for kind, answer, truth in (("colour", "Red.", "red"), ("count", " 2", "2"), ("existence", "yes", "yes")):
        feedback = critique(kind, answer, truth)
        assert feedback.correct and feedback.score == MAX_SCORE and feedback.critique == "The answer is correct."


@pytest.mark.parametrize("kind, answer, truth, says", [
    ("colour", "green", "red", "it is not green"),
    ("shape", "circle", "square", "it is not a circle"),
    ("existence", "yes", "no", "it is not yes"),
    ("position", "left", "right", "it is not left"),
])
def test_a_wrong_answer_is_told_what_it_is_not_and_never_the_truth(kind, answer, truth, says):
    feedback = critique(kind, answer, truth)
    assert not feedback.correct and feedback.score == 0 and says in feedback.critique
    words = f"{feedback.critique} {feedback.refinement}".lower().replace(".", " ").replace(":", " ").split()
    assert truth not in words


def test_a_count_is_told_which_way_it_is_off_and_scored_by_how_far():
    one_short, far_over = critique("count", "2", "3"), critique("count", "5", "2")
    assert "more than 2" in one_short.critique and "fewer than 5" in far_over.critique
    assert one_short.score == 6 and far_over.score == 0
    assert critique("count", "many", "3").critique == "The answer is not a number."


def test_a_box_is_scored_by_overlap_and_told_where_to_move():
    truth = "[[500,500,700,700]]"
    exact = critique("grounding", truth, truth)
    assert exact.correct and exact.score == MAX_SCORE
    left_of_it = critique("grounding", "[[100,500,300,700]]", truth)
    assert not left_of_it.correct and left_of_it.score == 0 and left_of_it.refinement == "Move it right."
    small_and_high = critique("grounding", "[[580,300,620,340]]", truth)
    assert small_and_high.refinement == "Move it down, make it larger."
    close = critique("grounding", "[[510,510,710,710]]", truth)
    assert close.correct and close.score == 8 and close.refinement == "Keep it."
    assert critique("grounding", "somewhere", truth).critique == "The answer is not a box."
    with pytest.raises(ValueError, match="not a box"):
        critique("grounding", truth, "left")


def test_the_feedback_turn_carries_score_critique_and_refinement():
    turn = critique("colour", "green", "red").as_turn()
    assert turn == "Score: 0/10. The colour is wrong: it is not green. Look at the colour of the object again. Answer the question again."
