"""The example record of a model: the reference record of its training (medians and most frequent categories).

`make predict`, the smoke test of a deployment, the OpenAPI example and explanations use it, so an example
always scores like real data. Stdlib only: the client and CI's smoke step import it without the model stack.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_MODEL_DIR = Path("models/champion")


def example_record(model_dir: Path | None = None) -> dict[str, Any]:
    """The reference record in `model_dir`/metadata.json (default: $MODEL_DIR, else models/champion)."""
    directory = model_dir or Path(os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR)
    path = directory / "metadata.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} does not exist: train and promote a model first (make pipeline)"
        ) from None
    record = document.get("reference_record") if isinstance(document, dict) else None
    if not isinstance(record, dict):
        raise ValueError(f"{path} holds no reference record: retrain the model (make pipeline)")
    return dict(record)


if __name__ == "__main__":
    print(json.dumps(example_record()))
