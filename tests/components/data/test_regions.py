import pytest

from components.data.errors import DataError
from components.data.regions import NO_REGION, check_regions, phrase_words, token_regions


def grid_of(owners: list[int], grid: int) -> list[list[int]]:
    return [owners[r * grid : (r + 1) * grid] for r in range(grid)]


def test_a_box_inside_one_cell_owns_that_cell_only():
    owners = token_regions([(0.3, 0.3, 0.45, 0.45)], grid=4)  # inside cell (row 1, col 1)
    assert grid_of(owners, 4) == [[-1, -1, -1, -1], [-1, 0, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1]]


def test_a_box_owns_the_cells_it_covers_by_a_tenth_and_always_its_centre():
    # x from 0.2 to 0.55: covers col 0 by (0.25-0.2)/0.25 = 20%, col 1 fully, col 2 by 20%;
    # y from 0.0 to 0.26: row 0 fully, row 1 by 4% only (left out)
    owners = token_regions([(0.2, 0.0, 0.55, 0.26)], grid=4)
    assert grid_of(owners, 4)[0] == [0, 0, 0, -1]
    assert grid_of(owners, 4)[1] == [-1, -1, -1, -1]


def test_a_small_box_on_a_corner_keeps_its_centre_cell():
    # 0.2..0.3: 2% of each of four cells' areas, under MIN_COVER; the centre (0.25, 0.25) is cell (1, 1)
    owners = token_regions([(0.2, 0.2, 0.3, 0.3)], grid=4)
    assert owners.count(0) == 1 and grid_of(owners, 4)[1][1] == 0


def test_the_region_covering_most_of_a_cell_gets_it_and_a_centre_beats_cover():
    boxes = [(0.0, 0.0, 0.6, 0.5), (0.55, 0.0, 1.0, 0.5)]
    owners = grid_of(token_regions(boxes, grid=2), 2)
    assert owners == [[0, 1], [NO_REGION, NO_REGION]]
    # box 1's centre (0.6, 0.1) lies in cell (0, 1), which box 0 covers by 20% only: box 1 wins it
    owners = grid_of(token_regions([(0.0, 0.0, 0.6, 0.5), (0.5, 0.0, 0.7, 0.2)], grid=2), 2)
    assert owners[0] == [0, 1]


def test_phrase_words_drop_articles_and_case():
    assert phrase_words("A small Green circle") == ["small", "green", "circle"]
    assert phrase_words("the") == []


@pytest.mark.parametrize(
    "regions, message",
    [
        ({"box": [0, 0, 1, 1]}, "expected a list"),
        ([{"box": [0, 0, 1, 1]}], r"regions\[0\]'.*exactly the keys 'box' and 'phrase'"),
        ([{"box": [0.5, 0, 0.4, 1], "phrase": "a red circle"}], r"regions\[0\]\.box'.*0 <= x0 < x1 <= 1"),
        ([{"box": [0, 0, 1, 12], "phrase": "a red circle"}], r"regions\[0\]\.box'"),
        ([{"box": [0, 0, 1, 1], "phrase": "a"}], r"regions\[0\]\.phrase'.*at least one word"),
    ],
)
def test_bad_regions_are_refused_with_the_field_named(regions, message):
    with pytest.raises(DataError, match=message):
        check_regions(regions, "captions.json sample 3")
