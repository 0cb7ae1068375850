"""The code that loads a registered contrastive (CLIP-style) model for `mlflow.pyfunc.load_model` and `mlflow models serve`.

Logged as "models from code", like the answering models' pyfunc. predict()
takes a DataFrame with an `image` column (a file path, PNG bytes or base64 PNG
text), a `text` column, or both, and optionally `candidates` (a list of texts,
or one string of texts separated by '|'). Per row it returns the unit-norm
`image_embedding` and `text_embedding` of what the row has, their cosine
`similarity` when it has both, and with candidates the zero-shot `label` and
the softmax `scores` over the candidates at the model's logit scale.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel

from components.data.llava_json import load_image
from components.evaluation.embeddings import text_embeddings
from flows.served_images import is_missing, read_served_image
from flows.served_model import load_served_model

INPUT_COLUMNS = ("image", "text", "candidates")


def _candidates(value) -> list[str]:
    texts = value.split("|") if isinstance(value, str) else list(value)
    texts = [str(t).strip() for t in texts if str(t).strip()]
    if not texts:
        raise ValueError("candidates is empty: give the texts to choose from as a list or as 'a|b|c'")
    return texts


class ClipPyfunc(PythonModel):
    def load_context(self, context) -> None:
        served = load_served_model(context.artifacts)
        self.config, self.tokenizer, self.model = served.config, served.tokenizer, served.model

    def _texts(self, texts: list[str]) -> torch.Tensor:
        return text_embeddings(self.model, self.tokenizer, texts)

    @torch.inference_mode()
    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)
        if not {"image", "text"} & set(frame.columns):
            raise ValueError(f"input needs an image or a text column (allowed columns: {', '.join(INPUT_COLUMNS)})")
        size, scale = self.config.vision.image_size, float(self.model.scale())
        rows = []
        for index, row in enumerate(frame.to_dict("records")):
            image = read_served_image(row.get("image"), lambda path: load_image(path, size))
            text = None if is_missing(row.get("text")) else row["text"]
            if image is None and text is None:
                raise ValueError(f"row {index}: neither an image nor a text to embed")
            out: dict = {"image_embedding": None, "text_embedding": None, "similarity": None, "label": None, "scores": None}
            image_emb = self.model.encode_image(image[None])[0] if image is not None else None
            text_emb = self._texts([str(text)])[0] if text is not None else None
            if image_emb is not None:
                out["image_embedding"] = image_emb.tolist()
            if text_emb is not None:
                out["text_embedding"] = text_emb.tolist()
            if image_emb is not None and text_emb is not None:
                out["similarity"] = float(image_emb @ text_emb)
            if not is_missing(row.get("candidates")):
                if image_emb is None:
                    raise ValueError(f"row {index}: candidates are chosen for an image, and the row has none")
                names = _candidates(row["candidates"])
                scores = (scale * self._texts(names) @ image_emb).softmax(dim=0).tolist()
                out["label"], out["scores"] = names[max(range(len(names)), key=scores.__getitem__)], dict(zip(names, scores))
            rows.append(out)
        return pd.DataFrame(rows)


mlflow.models.set_model(ClipPyfunc())
