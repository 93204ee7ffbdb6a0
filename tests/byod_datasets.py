"""Bring-your-own-data datasets: public tables, offline, written as CSV for a generated project to adopt.

Each one exercises a different kind of contract:

- `breast_cancer` (scikit-learn): binary target `target` (0 malignant, 1 benign), 30 float columns whose names
  contain spaces; no category, no id, no timestamp, no missing values. 569 rows.
- `penguins` (palmerpenguins): multiclass target `species` (Adelie, Chinstrap, Gentoo), categories `island` and
  `sex`, numbers with missing values (and `sex` missing too), integer columns. 344 rows.
- `diabetes` (scikit-learn, unscaled): regression target `target` (disease progression after a year), 10 numeric
  columns. 442 rows.

All three ship inside their Python packages (scikit-learn's `sklearn/datasets/data/`, palmerpenguins'
`palmerpenguins/data/penguins.csv`): nothing is downloaded. The rows are written as the loaders return them, in
their order, with nothing added or changed; missing values are empty fields. The penguins' integer columns
(flipper_length_mm, body_mass_g, year) are written as integers, as in the shipped file (pandas loads them as floats
because of their missing values). The output is deterministic: the same bytes on every run.

Needs pandas, scikit-learn and palmerpenguins (imported only by the dataset that uses them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATASETS = ("breast_cancer", "penguins", "diabetes")


def _breast_cancer() -> tuple[Any, str]:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame, "target"


def _penguins() -> tuple[Any, str]:
    import pandas as pd
    from palmerpenguins import load_penguins

    frame = load_penguins()
    # Whole-number float columns are the shipped file's integers, read as floats because some are missing.
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values.dtype) and bool((values.dropna() % 1 == 0).all()):
            frame[column] = values.astype("Int64")
    return frame, "species"


def _diabetes() -> tuple[Any, str]:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True, scaled=False).frame, "target"


_LOADERS: dict[str, Callable[[], tuple[Any, str]]] = {
    "breast_cancer": _breast_cancer,
    "penguins": _penguins,
    "diabetes": _diabetes,
}


def load_dataset(name: str) -> tuple[Any, str]:
    """(the dataset as a pandas DataFrame, the name of its target column)."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}: one of {', '.join(DATASETS)}") from None
    return loader()


def write_dataset(name: str, directory: Path | str) -> tuple[Path, str]:
    """Write dataset `name` to `directory`/<name>.csv; return (the CSV's path, the target column)."""
    frame, target = load_dataset(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.csv"
    frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    return path, target


if __name__ == "__main__":
    # python tests/byod_datasets.py DIRECTORY [NAME...]: write the datasets (all by default) into DIRECTORY.
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for dataset in sys.argv[2:] or DATASETS:
        csv_path, target_column = write_dataset(dataset, out)
        print(f"{csv_path} (target: {target_column})")
