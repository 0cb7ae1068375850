"""The code that loads a registered text-to-video model for `mlflow.pyfunc.load_model` and `mlflow models serve`.

Logged as "models from code", like the other pyfuncs. predict() takes a DataFrame with a `prompt` column and,
optionally per row, `frames` (1 for an image), `height`, `width` (pixels; the size of the noise grid, and so of
the video), `guidance` (classifier-free guidance scale), `steps` (sampler steps), `seed` and `expand` (whether the
short prompt is expanded into a descriptive caption first; by default as the model was evaluated). Per row it returns the
video as a base64 PNG strip (`strip`: the frames side by side, lossless) and a base64 animated GIF (`gif`), with its
frames, height and width. Sizes the model cannot make are refused with what it can.

Images and videos as prompts: with a `source` (a file path, PNG bytes or base64 PNG: an image, or a clip's frames
side by side as the strips above, `source_frames` of them) and a `mode`, a row edits it under the prompt (`edit`,
SDEdit, by `strength` in (0, 1]), animates an image into `frames` frames (`animate`), or continues a clip by
`extra_frames` (`extend`, `direction` forwards or backwards); the output's size is then the source's.
"""

from __future__ import annotations

import base64
import io

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel
from PIL import Image

from components.data.llava_json import encode_caption
from components.data.prompt_expansion import expand_prompt
from components.data.video_clips import video_frames, video_tensor
from components.models.diffusion import editing
from components.models.diffusion.sampling import SamplingConfig
from flows.served_images import is_missing, read_served_image
from flows.served_model import load_served_model

DEFAULTS = {"frames": 1, "height": 32, "width": 32, "guidance": 3.0, "seed": 0, "strength": 0.6, "source_frames": 1,
            "extra_frames": 4, "direction": "forwards", "mode": "generate"}
MODES = ("generate", "edit", "animate", "extend")
MAX_SIDE, MAX_FRAMES = 256, 64


def _png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _gif(frames: np.ndarray) -> str:
    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=250, loop=0)
    return base64.b64encode(buffer.getvalue()).decode()


class VideoPyfunc(PythonModel):
    def load_context(self, context) -> None:
        served = load_served_model(context.artifacts)
        self.tokenizer, self.model = served.tokenizer, served.model
        self.sampling = SamplingConfig.model_validate(served.spec.get("sampling", {}))
        self.expand = bool(served.spec.get("expand_prompts", False))

    def _size(self, index: int, row: dict) -> tuple[int, int, int]:
        frames, height, width = (int(self._get(row, k)) for k in ("frames", "height", "width"))
        ae = self.model.autoencoder.cfg
        side = ae.downsample * self.model.dit.cfg.patch_size
        latent_frames = self.model.autoencoder.latent_shape(frames, height, width)[1]
        if not 1 <= frames <= MAX_FRAMES or (frames - 1) % ae.time_downsample or latent_frames % self.model.dit.cfg.patch_frames:
            raise ValueError(f"row {index}: frames={frames}; allowed: 1 + k * {ae.time_downsample}, at most {MAX_FRAMES} (1 is an image)")
        for name, value in (("height", height), ("width", width)):
            if not side <= value <= MAX_SIDE or value % side:
                raise ValueError(f"row {index}: {name}={value}; allowed: multiples of {side} from {side} to {MAX_SIDE}")
        return frames, height, width

    @staticmethod
    def _get(row: dict, key: str):
        return row[key] if not is_missing(row.get(key)) else DEFAULTS[key]

    def _from_source(self, index: int, row: dict, mode: str, ids, size, config: SamplingConfig, generator) -> torch.Tensor:
        """What `mode` makes of the row's source under its prompt: (3, T, H, W) in [-1, 1]."""
        source_frames = int(self._get(row, "source_frames"))
        strip = read_served_image(row.get("source"), lambda path: np.asarray(Image.open(path).convert("RGB")))
        if strip is None:
            raise ValueError(f"row {index}: mode {mode} needs a source image or clip (a path, PNG bytes or base64 PNG)")
        if strip.shape[1] % source_frames:
            raise ValueError(f"row {index}: the source is {strip.shape[1]} pixels wide, not source_frames={source_frames} frames side by side")
        frames = np.stack(np.split(strip, source_frames, axis=1))  # (T, H, W, 3)
        self._size(index, {"frames": source_frames, "height": frames.shape[1], "width": frames.shape[2]})
        source = video_tensor(frames)[None]  # (1, 3, T, H, W)
        mask = torch.ones_like(ids)
        if mode == "edit":
            return editing.edit(self.model, source, ids, mask, float(self._get(row, "strength")), config, generator)[0]
        if mode == "animate":
            return editing.animate(self.model, source[:, :, 0], ids, mask, size[0], config, generator)[0]
        direction = str(self._get(row, "direction"))
        if direction not in ("forwards", "backwards"):
            raise ValueError(f"row {index}: direction={direction!r}; allowed: forwards, backwards")
        return editing.extend(self.model, source, ids, mask, int(self._get(row, "extra_frames")), direction, config, generator)[0]

    @torch.inference_mode()
    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)
        if "prompt" not in frame.columns:
            raise ValueError("input needs a prompt column (and optionally frames, height, width, guidance, steps, seed)")
        rows = []
        for index, row in enumerate(frame.to_dict("records")):
            if is_missing(row.get("prompt")) or not str(row["prompt"]).strip():
                raise ValueError(f"row {index}: the prompt is empty")
            size = self._size(index, row)
            update = {"guidance": float(self._get(row, "guidance"))} | ({"steps": int(row["steps"])} if not is_missing(row.get("steps")) else {})
            config = SamplingConfig.model_validate(self.sampling.model_dump() | update)
            expand = bool(row["expand"]) if not is_missing(row.get("expand")) else self.expand
            prompt = expand_prompt(str(row["prompt"]), size[0], size[2], size[1]) if expand else str(row["prompt"])
            ids = torch.tensor([encode_caption(self.tokenizer, prompt, self.model.max_text_len)])
            seed = int(self._get(row, "seed"))
            mode = str(self._get(row, "mode"))
            if mode not in MODES:
                raise ValueError(f"row {index}: mode={mode!r}; allowed: {', '.join(MODES)}")
            generator = torch.Generator().manual_seed(seed)
            if mode == "generate":
                video = self.model.generate(ids, torch.ones_like(ids), size, config, generator)[0]
            else:
                video = self._from_source(index, row, mode, ids, size, config, generator)
                size = tuple(video.shape[1:])
            frames = video_frames(video)  # (T, H, W, 3)
            strip = Image.fromarray(np.concatenate(list(frames), axis=1))
            rows.append({"strip": _png(strip), "gif": _gif(frames), "frames": size[0], "height": size[1], "width": size[2], "prompt": prompt})
        return pd.DataFrame(rows)


mlflow.models.set_model(VideoPyfunc())
