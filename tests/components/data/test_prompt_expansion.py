"""Short prompts become the descriptive captions a re-captioned generator was trained on."""

import pytest

from components.data.prompt_expansion import expand_prompt, object_phrases
from components.data.shapes_videos import VideosConfig, descriptive_caption, sample_video, video_caption


def test_a_videos_short_caption_expands_into_its_descriptive_caption_but_for_the_places():
    for index in range(40):
        video = sample_video(VideosConfig(max_shapes=1), 0, "test", index)
        expanded = expand_prompt(video_caption(video), video.frames, video.width, video.height)
        truth = descriptive_caption(video)
        # the same canvas sentence, and the same object sentence up to where the places start
        assert expanded.rsplit(". ", 1)[1] == truth.rsplit(". ", 1)[1]
        head = truth.split(" at the ")[0].split(" from the ")[0].split(" within the ")[0].split(" in place")[0]
        assert expanded.startswith(head), (expanded, truth)


def test_phrases_it_does_not_know_are_kept_and_empty_prompts_refused():
    assert object_phrases("A large red square moves left, a small circle  and a blue thing.") == [
        "a large red square moves left", "a small circle", "a blue thing"]
    assert expand_prompt("a blue thing that spins", 1, 32, 32) == (
        "A blue thing that spins. A square still image, 32 pixels wide and 32 high, of one shape on a dark background.")
    with pytest.raises(ValueError, match="the prompt is empty"):
        expand_prompt("  . ", 1, 32, 32)


def test_recaptioning_writes_each_videos_own_description_and_keeps_the_short_caption(tmp_path):
    from components.data.recaption import recaption
    from components.data.videos_dataset import video_sample

    videos = [sample_video(VideosConfig(), 0, "train", i) for i in range(6)]
    samples = [video_sample(v, "train", i) for i, v in enumerate(videos)]
    rewritten, stats = recaption(samples)
    assert [s["caption"] for s in rewritten] == [descriptive_caption(v) for v in videos]
    assert [s["short_caption"] for s in rewritten] == [video_caption(v) for v in videos]
    assert stats["videos_recaptioned"] == 6 and stats["caption_words_after"] > stats["caption_words_before"]
