"""Few-shot prompts: in-context examples of the question's type, the same on every run."""

from components.data.conversation import answer_ids, encode_prompt, prompt_ids
from components.evaluation.few_shot import choose_examples, example_pool, few_shot_prompt
from components.evaluation.llava_eval import eval_items
from components.training.stage_data import instruct_file


def test_examples_share_the_question_type_and_are_drawn_the_same_each_time(built_dataset):
    support = eval_items(instruct_file(built_dataset, "train"), built_dataset)
    pool = example_pool(support)
    assert all(t.image is not None and not t.history for turns in pool.values() for t in turns)
    for kind, turns in pool.items():
        if len(turns) >= 2:
            picked = choose_examples(pool, kind, 2, seed=5)
            assert [t.question_type for t in picked] == [kind, kind]
            assert picked == choose_examples(pool, kind, 2, seed=5)


def test_the_prompt_is_the_examples_then_the_query(built_dataset, built_tokenizer):
    tok = built_tokenizer
    items = eval_items(instruct_file(built_dataset, "test"), built_dataset)
    query = next(i for i in items if i.history)  # a later turn: its conversation comes along
    examples = choose_examples(example_pool(eval_items(instruct_file(built_dataset, "train"), built_dataset)), query.question_type, 2, 0)
    ids = few_shot_prompt(examples, query, tok)
    expected = [tok.bos_id]
    for e in examples:
        expected += prompt_ids(e.question, tok) + answer_ids(e.answer, tok)
    expected += encode_prompt(list(query.history), query.question, tok)[1:]
    assert ids == expected
    assert ids.count(tok.image_id) == 3 and ids.count(tok.bos_id) == 1
