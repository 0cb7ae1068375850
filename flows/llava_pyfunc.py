"""The code that loads a registered model (LLaVA-style or Flamingo) for `mlflow.pyfunc.load_model` and `mlflow models serve`.

Logged as "models from code": MLflow stores this file, not a pickled object;
the weights are a safetensors artifact. predict() takes a DataFrame with
columns `image` (a file path, PNG bytes, or base64 PNG text) and `prompt`,
and returns one answer per row.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from components.data.conversation import encode_prompt
from components.data.llava_images import ImageProcessor
from components.data.tokenizer import IMAGE_TOKEN, TextTokenizer
from components.inference.answer import answer_prompts
from components.models.family import ModelConfig
from components.training.checkpoints import load_weights
from components.training.stage_models import build_stage_model
from flows.pretrained_artifacts import served_model_spec


class LlavaPyfunc(PythonModel):
    def load_context(self, context) -> None:
        spec = json.loads(Path(context.artifacts["model_config"]).read_text())
        self.config = ModelConfig.model_validate(served_model_spec(spec["model"], context.artifacts))
        self.max_new_tokens = spec.get("max_new_tokens", 24)
        self.tokenizer = TextTokenizer.load(Path(context.artifacts["tokenizer"]))
        # The builder of the output stage's objective (versions logged before it was recorded are LLaVA-style);
        # pretrained towers are built from their logged configs, since the weights below are all the model needs.
        self.model = build_stage_model(spec.get("objective", "llava_instruct"), self.config, self.tokenizer, load_pretrained=False)
        self.model.load_state_dict(load_weights(Path(context.artifacts["weights"])))
        self.model.eval()

    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)
        missing = {"image", "prompt"} - set(frame.columns)
        if missing:
            raise ValueError(f"input needs columns image and prompt; missing: {', '.join(sorted(missing))}")
        processor = ImageProcessor(self.config.vision.image_size, self.config.anyres_pinpoints)
        images = [self._image(value, processor) for value in frame["image"]]
        prompts = []
        for prompt, image in zip(frame["prompt"], images):
            question = str(prompt)
            if image is not None and IMAGE_TOKEN not in question:
                question = f"{IMAGE_TOKEN}\n{question}"
            prompts.append(encode_prompt([], question, self.tokenizer))
        return answer_prompts(self.model, self.tokenizer, prompts, images, processor, max_new_tokens=self.max_new_tokens)

    @staticmethod
    def _image(value, processor: ImageProcessor):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return None
        if isinstance(value, str) and Path(value).is_file():
            return processor(Path(value))
        if isinstance(value, str):
            try:
                value = base64.b64decode(value, validate=True)
            except binascii.Error:
                raise ValueError(f"image {value[:40]!r} is neither an existing file nor base64 PNG data") from None
        with tempfile.NamedTemporaryFile(suffix=".png") as handle:
            handle.write(bytes(value))
            handle.flush()
            return processor(Path(handle.name))


mlflow.models.set_model(LlavaPyfunc())
