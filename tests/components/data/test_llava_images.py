"""LLaVA-1.6 input: a global view plus the tiles of the image fitted into its best pinpoint grid."""

import torch
from PIL import Image

from components.data.llava_images import ImageProcessor, anyres_views, collate_images

PINPOINTS = ((16, 32), (32, 16), (32, 32))


def wide_image() -> Image.Image:
    image = Image.new("RGB", (32, 16), (0, 0, 0))
    image.paste((255, 0, 0), (0, 0, 16, 16))  # left half red, right half black
    return image


def test_a_wide_image_becomes_a_global_view_and_two_tiles_side_by_side():
    views = anyres_views(wide_image(), 16, PINPOINTS)
    assert views.shape == (3, 3, 16, 16)
    assert torch.allclose(views[1, 0], torch.ones(16, 16))  # left tile: red channel at +1
    assert torch.allclose(views[2, 0], -torch.ones(16, 16))  # right tile: black
    assert views[0, 0, :, :8].mean() > 0.9 and views[0, 0, :, 8:].mean() < -0.9  # the whole, squashed


def test_an_image_that_does_not_fill_its_grid_is_centred_on_padding():
    image = Image.new("RGB", (16, 16), (255, 255, 255))
    views = anyres_views(image, 16, ((16, 32),))  # a square image in a 1 x 2 grid: padded left and right
    canvas = torch.cat([views[1], views[2]], dim=2)  # (3, 16, 32)
    assert torch.allclose(canvas[:, :, 8:24], torch.ones(3, 16, 16))
    assert torch.allclose(canvas[:, :, :8], -torch.ones(3, 16, 8)) and torch.allclose(canvas[:, :, 24:], -torch.ones(3, 16, 8))


def test_batches_pad_views_and_keep_each_image_size(tmp_path):
    wide, tall = tmp_path / "wide.png", tmp_path / "tall.png"
    wide_image().save(wide)
    Image.new("RGB", (16, 32)).save(tall)
    processor = ImageProcessor(16, PINPOINTS)
    items = [processor(wide), processor(None), processor(tall)]
    assert [processor.num_views(tuple(item["image_sizes"].tolist())) for item in items] == [3, 3, 3]
    batch = collate_images(items)
    assert batch["pixel_values"].shape == (3, 3, 3, 16, 16)
    assert batch["image_sizes"].tolist() == [[16, 32], [16, 16], [32, 16]]
    assert ImageProcessor(16)(wide)["pixel_values"].shape == (3, 16, 16)  # square input: one squashed view
