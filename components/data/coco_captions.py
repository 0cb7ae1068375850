"""COCO-captions JSON: images and their captions, to and from our LLaVA-format caption samples.

A COCO captions file (captions_train2017.json's layout) is one object:

    {"images": [{"id": 1, "file_name": "000001.png", "width": 64, "height": 64}, ...],
     "annotations": [{"id": 7, "image_id": 1, "caption": "a red circle at the centre"}, ...]}

Every annotation is one caption sample (an image with five captions is five samples), asked with
CAPTION_PROMPT since COCO keeps no prompt. `file_name` is relative to the images' folder; it is
checked like any image path of ours (components.data.paths), wherever that folder is.
"""

from __future__ import annotations

from collections.abc import Iterable

from components.data.errors import DataError
from components.data.paths import check_relative

CAPTION_PROMPT = "<image>\nDescribe the image briefly."


def coco_from_samples(samples: Iterable[dict], description: str = "") -> dict:
    """A COCO captions object from LLaVA caption samples with an image: one image and one caption each,
    the caption being the sample's first answer; image ids count from 1 in order."""
    images, annotations = [], []
    for number, sample in enumerate(samples, start=1):
        if not sample.get("image"):
            continue
        scene = sample.get("scene") or {}
        image = {"id": number, "file_name": sample["image"]}
        if "width" in scene and "height" in scene:
            image |= {"width": scene["width"], "height": scene["height"]}
        images.append(image)
        annotations.append({"id": number, "image_id": number, "caption": sample["conversations"][1]["value"]})
    return {"info": {"description": description}, "images": images, "annotations": annotations}


def caption_samples_from_coco(data: object, source: str) -> list[dict]:
    """LLaVA caption samples, one per annotation, in the file's order; DataError names `source`, the entry and
    the field. Each sample's `image` is its image's file_name, relative to the images' folder."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise DataError(f"{source}: expected a COCO captions object with lists 'images' and 'annotations'")
    files: dict[int, str] = {}
    for index, image in enumerate(data["images"]):
        where = f"{source}: images[{index}]"
        if not isinstance(image, dict) or not _whole(image.get("id")):
            raise DataError(f"{where}: field 'id' is {image.get('id') if isinstance(image, dict) else image!r}; expected a whole number")
        if image["id"] in files:
            raise DataError(f"{where}: id {image['id']} is given to two images")
        files[image["id"]] = check_relative(image.get("file_name"), where, "file_name", "the images' folder")
    samples = []
    for index, note in enumerate(data["annotations"]):
        where = f"{source}: annotations[{index}]"
        if not isinstance(note, dict):
            raise DataError(f"{where} is a {type(note).__name__}; expected an object")
        if note.get("image_id") not in files:
            raise DataError(f"{where}: field 'image_id' is {note.get('image_id')!r}, which no entry of 'images' has")
        caption = note.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise DataError(f"{where}: field 'caption' is {caption!r}; expected a non-empty string")
        ident = f"{note['image_id']}_{note['id']}" if _whole(note.get("id")) else f"{note['image_id']}_{index}"
        samples.append({
            "id": ident, "image": files[note["image_id"]],
            "conversations": [{"from": "human", "value": CAPTION_PROMPT}, {"from": "gpt", "value": caption.strip()}],
        })
    return samples


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
