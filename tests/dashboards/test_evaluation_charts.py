"""The rows of the Models page's evaluation charts."""

import math

from dashboards.evaluation_charts import feedback_rounds, guidance_bars, ofa_task_bars, reading_bars, text_only_bars


def test_feedback_rows_follow_the_rounds_with_the_reference_beside():
    metrics = {"feedback_em_round1": 0.8, "feedback_em_round0": 0.6, "feedback_em_round1_reference": 0.65,
               "feedback_em_round0_reference": 0.6, "feedback_gain": 0.2, "vqa_exact_match": 0.6}
    assert feedback_rounds(metrics) == [
        {"round": 0, "this model": 0.6, "before feedback training": 0.6},
        {"round": 1, "this model": 0.8, "before feedback training": 0.65},
    ]
    assert feedback_rounds({"vqa_exact_match": 0.6}) == []
    assert feedback_rounds({"feedback_em_round0": 0.5}) == [{"round": 0, "this model": 0.5}]


def test_text_only_rows_give_the_model_and_its_lm_overall_and_by_type():
    metrics = {"text_only_exact_match": 0.3, "text_only_exact_match_reference": 0.5, "text_only_em_count": 0.1,
               "text_only_em_count_reference": 1.0, "text_only_em_colour": 0.2}
    rows = text_only_bars(metrics)
    assert [r["questions"] for r in rows] == ["all", "colour", "count"]
    assert rows[0] == {"questions": "all", "this model": 0.3, "text-only LM": 0.5} and rows[2]["text-only LM"] == 1.0
    assert math.isnan(rows[1]["text-only LM"])
    assert text_only_bars({"vqa_exact_match": 0.9}) == []


def test_a_page_reader_and_ofa_get_one_bar_per_figure_they_logged():
    reading = reading_bars({"ocr_word_f1": 0.9, "ocr_block_f1": 0.5, "md_ned_score": 0.8, "vqa_exact_match": 0.1})
    assert reading == [{"figure": "OCR words (F1)", "value": 0.9}, {"figure": "OCR blocks, text and box (F1)", "value": 0.5},
                       {"figure": "markdown 1 - edit distance", "value": 0.8}]
    assert [row["figure"] for row in ofa_task_bars({"caption_exact_match": 0.4, "vqa_exact_match": 0.7})] == ["VQA exact match", "captions exact"]
    assert reading_bars({"vqa_exact_match": 0.7}) == [] and ofa_task_bars({"vqa_exact_match": 0.7}) == []


def test_a_generator_gets_one_bar_group_per_guidance_scale_in_scale_order():
    metrics = {"generation_accuracy_g6": 0.9, "generation_accuracy_g1": 0.5, "generation_accuracy_g2p5": 0.8, "real_accuracy": 0.95,
               "generation_colour_accuracy_g1": 0.4, "generation_accuracy": 0.9}
    assert guidance_bars(metrics) == [
        {"guidance": "1", "samples": 0.5, "real videos": 0.95},
        {"guidance": "2.5", "samples": 0.8, "real videos": 0.95},
        {"guidance": "6", "samples": 0.9, "real videos": 0.95},
    ]
    assert guidance_bars({"vqa_exact_match": 0.9}) == []
    with_reconstructions = guidance_bars({"generation_accuracy_g1": 0.5, "real_accuracy": 0.95, "reconstructed_accuracy": 0.7})
    assert with_reconstructions == [{"guidance": "1", "samples": 0.5, "real videos": 0.95, "reconstructed videos": 0.7}]
