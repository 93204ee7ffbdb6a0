"""Bring-your-own-data datasets: public tables, offline, written as CSV for a generated project to adopt.

Each one exercises a different kind of contract:

- `breast_cancer` (scikit-learn): binary target `target` (0 malignant, 1 benign), 30 float columns whose names
  contain spaces; no category, no id, no timestamp, no missing values. 569 rows.
- `penguins` (palmerpenguins): multiclass target `species` (Adelie, Chinstrap, Gentoo), categories `island` and
  `sex`, numbers with missing values (and `sex` missing too), integer columns. 344 rows.
- `rentals` (synthetic, written here): regression target `rentals`, a count of bike rentals per station and hour
  (0 to about 80); an integer id `rental_id`; 0/1 flags that are 0 for most rows (`holiday` 3 %, `event` 1.5 %,
  `snow` 5 %) and one that is not (`workingday`); a zero-inflated float (`rain_mm`, 0 on 90 % of the rows); a year
  2007 to 2009; a category (`season`); and a date column that is not an event time (`date_of_birth` of the
  station's registered member). 8,000 rows.

The first two ship inside their Python packages (scikit-learn's `sklearn/datasets/data/`, palmerpenguins'
`palmerpenguins/data/penguins.csv`); `rentals` is generated from a fixed seed: nothing is downloaded. The rows
are written as the loaders return them, in their order, with nothing added or changed; missing values are empty
fields. The penguins' integer columns
(flipper_length_mm, body_mass_g, year) are written as integers, as in the shipped file (pandas loads them as floats
because of their missing values). The output is deterministic: the same bytes on every run.

Needs pandas, numpy, scikit-learn and palmerpenguins (imported only by the dataset that uses them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATASETS = ("breast_cancer", "penguins", "rentals")
RENTALS_ROWS = 8000


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


def _rentals() -> tuple[Any, str]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(19)
    rows = RENTALS_ROWS
    hour = rng.integers(0, 24, rows)
    season = rng.choice(["winter", "spring", "summer", "autumn"], rows)
    warmth = {"winter": 4.0, "spring": 14.0, "summer": 24.0, "autumn": 13.0}
    temperature = np.round(np.array([warmth[name] for name in season]) + rng.normal(0, 4, rows), 1)
    holiday = (rng.random(rows) < 0.03).astype(int)
    event = (rng.random(rows) < 0.015).astype(int)
    snow = ((rng.random(rows) < 0.05) & (season == "winter") | (rng.random(rows) < 0.01)).astype(int)
    workingday = ((rng.random(rows) < 0.7) & (holiday == 0)).astype(int)
    rain = np.where(rng.random(rows) < 0.9, 0.0, np.round(rng.gamma(1.5, 2.0, rows), 1))
    year = rng.integers(2007, 2010, rows)
    rush = np.isin(hour, [8, 17, 18]) * workingday
    daytime = (hour >= 7) & (hour <= 21)
    expected = (
        2.0
        + 8.0 * daytime
        + 14.0 * rush
        + 0.6 * np.clip(temperature, 0, None)
        + 20.0 * event
        - 6.0 * snow
        - 1.2 * rain
        + 3.0 * (year - 2007)
    )
    rentals = rng.poisson(np.clip(expected, 0.2, None))
    born = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 365 * 50, rows), unit="D")
    frame = pd.DataFrame(
        {
            "rental_id": np.arange(100001, 100001 + rows),
            "date_of_birth": born.strftime("%Y-%m-%d"),
            "year": year,
            "season": season,
            "hour": hour,
            "workingday": workingday,
            "holiday": holiday,
            "event": event,
            "snow": snow,
            "temperature": temperature,
            "rain_mm": rain,
            "rentals": rentals,
        }
    )
    return frame, "rentals"


_LOADERS: dict[str, Callable[[], tuple[Any, str]]] = {
    "breast_cancer": _breast_cancer,
    "penguins": _penguins,
    "rentals": _rentals,
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
