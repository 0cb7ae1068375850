"""The code that loads a registered model (LLaVA-style or Flamingo) for `mlflow.pyfunc.load_model` and `mlflow models serve`.

Logged as "models from code": MLflow stores this file, not a pickled object;
the weights are a safetensors artifact. predict() takes a DataFrame with
columns `image` (a file path, PNG bytes, or base64 PNG text) and `prompt`,
and returns one answer per row.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from components.data.conversation import encode_prompt
from components.data.llava_images import ImageProcessor
from components.data.tokenizer import IMAGE_TOKEN
from components.inference.answer import answer_prompts
from flows.served_images import read_served_image
from flows.served_model import load_served_model


class LlavaPyfunc(PythonModel):
    def load_context(self, context) -> None:
        served = load_served_model(context.artifacts)
        self.config, self.tokenizer, self.model = served.config, served.tokenizer, served.model
        self.max_new_tokens = served.spec.get("max_new_tokens", 24)

    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)
        missing = {"image", "prompt"} - set(frame.columns)
        if missing:
            raise ValueError(f"input needs columns image and prompt; missing: {', '.join(sorted(missing))}")
        processor = ImageProcessor(self.config.vision.image_size, self.config.anyres_pinpoints)
        images = [read_served_image(value, processor) for value in frame["image"]]
        prompts = []
        for prompt, image in zip(frame["prompt"], images):
            question = str(prompt)
            if image is not None and IMAGE_TOKEN not in question:
                question = f"{IMAGE_TOKEN}\n{question}"
            prompts.append(encode_prompt([], question, self.tokenizer))
        return answer_prompts(self.model, self.tokenizer, prompts, images, processor, max_new_tokens=self.max_new_tokens)


mlflow.models.set_model(LlavaPyfunc())
