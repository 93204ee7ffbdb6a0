"""Draft contract.yaml from a table, for the team to review: `make contract DATA=<file> TARGET=<column>`.

    python -m <package>.contract_draft DATA --target COLUMN [--output contract.yaml]
        [--task binary|multiclass|regression] [--id COLUMN] [--timestamp COLUMN] [--force]

The draft describes what the file shows, not what the data may be: review every line (ranges, categories,
nullable, the task and its classes) and write the descriptions before you commit it. The rules are simple and
predictable on purpose:

- dtype: object, string, bool and categorical columns are `category` (categories: the observed values as
  sorted strings); integer columns are `int`; float columns are `float`, or `int` when every value is a whole
  number (integers with missing values are floats in pandas).
- min / max: the observed range widened by 10 % of its width on each side, never crossing 0 when the observed
  values do not; floats are rounded outwards to 3 significant digits of the width; ints are widened by 10 % of
  the width rounded down to a whole number, so a narrow integer range (a 0/1 flag, years 2007 to 2009, a
  rating 1 to 5) is kept as observed rather than stretched to values it cannot take. A 0/1 column is
  described as a flag, with the share of its 1s.
- nullable: true when any value is missing.
- left out, with a `# left out: <column> (<reason>)` comment: columns with a single value, category columns
  with more than 50 categories, dates, and columns whose name the feature matrix cannot use.
- task (unless --task): a target with 2 values is binary; a non-numeric one, or whole numbers, with 3 to 20
  values is multiclass; any other numeric target is regression. Classes are sorted (whole numbers stay ints,
  anything else becomes strings): for a binary target the second is the positive class.
- id (unless --id): the first column named `id` or `..._id` whose values are all present and unique (strings
  or integers). timestamp (unless --timestamp): the first date column (a datetime column, or a text column
  of which more than 95 % of the values parse as dates) whose name does not say it is a date of birth
  (birth, dob, born): a birth date is not when a row's event happened. The draft says in a comment which
  column it took and that `make pipeline` then holds out the latest rows by it, or why it took none.
  Neither is a model input, nor is any other date column. `--id ''` / `--timestamp ''` say there is none.

The draft is checked with `parse_contract` before it is written. Exit codes: 0 written, 1 the output exists
(--force overwrites), 2 the data cannot be drafted (unreadable file, unknown target, invalid contract).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .contract import ContractError, parse_contract

MARGIN = 0.10  # of the observed range, on each side
MAX_CATEGORIES = 50
MAX_CLASSES = 20
DATETIME_SHARE = 0.95  # of the (non-missing) values that must parse as dates
DATETIME_SAMPLE = 1000  # values checked per text column
_ID_NAME = re.compile(r"(?i:(.*[_\-\s.])?id)|.*[a-z0-9](Id|ID)")  # id, account_id, Order ID, userId
_DATE_DIGITS = r"\d{4}|\d{1,2}[-/.]\d{1,2}"
_MISSING_SUFFIX = "__missing"
_BIRTH_NAME = re.compile(r"(?i)birth|(^|[^a-z])dob([^a-z]|$)|born")  # date_of_birth, DOB, BirthDate, born_on


class DraftError(ValueError):
    """The table cannot be drafted into a contract (the message says why)."""


@dataclass
class Draft:
    """A drafted contract: the mapping `parse_contract` checks, and the text written with its comments."""

    document: dict[str, Any]
    text: str
    left_out: dict[str, str] = field(default_factory=dict)


# --- YAML pieces: values through yaml.safe_dump, the layout and the comments by hand ------------------------


def _scalar(value: Any) -> str:
    """One YAML scalar (or flow list) on one line, quoted when YAML needs it."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=math.inf)
    text = text.rstrip("\n")
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text


def _comment_text(text: str) -> str:
    return " ".join(str(text).split()) if "\n" in str(text) else str(text)


# --- numbers ------------------------------------------------------------------------------------------------


def _widened(low: float, high: float, as_int: bool) -> tuple[int | float, int | float]:
    """The observed [low, high] widened by MARGIN of its width, rounded outwards, not crossing 0."""
    width = high - low
    margin = MARGIN * width
    new_low, new_high = low - margin, high + margin
    if low >= 0:
        new_low = max(new_low, 0.0)
    if high <= 0:
        new_high = min(new_high, 0.0)
    if as_int:
        whole_margin = math.floor(margin)
        int_low, int_high = low - whole_margin, high + whole_margin
        if low >= 0:
            int_low = max(int_low, 0.0)
        if high <= 0:
            int_high = min(int_high, 0.0)
        return math.floor(int_low), math.ceil(int_high)
    if width == 0:
        return float(low), float(high)
    exponent = math.floor(math.log10(width)) - 2
    step = 10.0**exponent
    digits = max(0, -exponent)
    rounded_low = round(math.floor(new_low / step) * step, digits)
    rounded_high = round(math.ceil(new_high / step) * step, digits)
    # Guard against floating-point error in the rounding: the range always contains what was observed.
    if rounded_low > low:
        rounded_low = round(rounded_low - step, digits)
    if rounded_high < high:
        rounded_high = round(rounded_high + step, digits)
    return float(rounded_low), float(rounded_high)


def _show(value: float, as_int: bool) -> str:
    return str(int(value)) if as_int else f"{value:g}"


def _missing_note(missing: int, rows: int) -> str:
    if not missing:
        return ""
    share = 100.0 * missing / rows
    shown = f"{share:.0f}" if share >= 10 else f"{share:.2g}"
    return f" ({missing} missing: {shown} %)"


def _whole(values: pd.Series) -> bool:
    """True when every (non-missing, finite) value of a numeric series is a whole number."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return True
    numbers = values.astype("float64")
    return bool(((numbers % 1) == 0).all())


# --- what a column looks like -------------------------------------------------------------------------------


def _is_text(values: pd.Series) -> bool:
    return bool(
        pd.api.types.is_object_dtype(values.dtype)
        or pd.api.types.is_string_dtype(values.dtype)
        or isinstance(values.dtype, pd.CategoricalDtype)
    )


def _looks_like_dates(values: pd.Series) -> bool:
    """A datetime column, or a text column of which more than 95 % of the sampled values parse as dates."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return True
    if not _is_text(values) or pd.api.types.is_bool_dtype(values.dtype):
        return False
    present = values.dropna()
    if present.empty:
        return False
    sample = present.head(DATETIME_SAMPLE).astype(str).str.strip()
    # A date has a year or day-month digits: dateutil alone also reads "May", "1st" or "10:30" as dates.
    dated = sample.str.contains(_DATE_DIGITS, regex=True) & ~sample.str.fullmatch(r"\d+")
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)
    return bool((dated & parsed.notna()).mean() > DATETIME_SHARE)


def _id_candidate(name: str, values: pd.Series) -> bool:
    if not _ID_NAME.fullmatch(name.strip()):
        return False
    if values.isna().any() or values.empty:
        return False
    kind_ok = pd.api.types.is_integer_dtype(values.dtype) or (
        _is_text(values) and not pd.api.types.is_bool_dtype(values.dtype)
    )
    return bool(kind_ok and values.is_unique)


def _name_problem(name: str) -> str | None:
    """Why the feature matrix cannot use `name` (contract.py's rule), or None."""
    if not name.strip():
        return "an empty name: rename it"
    if "=" in name:
        return "its name contains '=', which one-hot feature names use: rename it"
    if name.endswith(_MISSING_SUFFIX):
        return f"its name ends in {_MISSING_SUFFIX!r}, which missing-value indicators use: rename it"
    return None


def _column_spec(name: str, values: pd.Series) -> tuple[dict[str, Any] | None, str]:
    """(the contract entry, '') for a model input, or (None, why it is left out)."""
    problem = _name_problem(name)
    if problem:
        return None, problem
    rows = len(values)
    missing = int(values.isna().sum())
    present = values.dropna()
    note = _missing_note(missing, rows)
    if present.empty:
        return None, "no values"
    if pd.api.types.is_datetime64_any_dtype(values.dtype) or pd.api.types.is_timedelta64_dtype(values.dtype):
        return None, "dates: not a model input (derive a number from them upstream)"
    if pd.api.types.is_bool_dtype(values.dtype) or _is_text(values):
        categories = sorted({str(value) for value in present})
        if len(categories) == 1:
            return None, f"a single value: {_comment_text(categories[0])!r}"
        if len(categories) > MAX_CATEGORIES:
            if _looks_like_dates(values):
                return None, "dates: not a model input (derive a number from them upstream)"
            return None, f"{len(categories)} categories, more than {MAX_CATEGORIES}"
        spec: dict[str, Any] = {"dtype": "category", "categories": categories}
        description = f"Observed: {len(categories)} categories{note}."
    elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_complex_dtype(values.dtype):
        numbers = present.astype("float64")
        if not np.isfinite(numbers.to_numpy()).all():
            return None, "infinite values"
        low, high = float(numbers.min()), float(numbers.max())
        if low == high:
            return None, f"a single value: {_show(low, _whole(present))}"
        as_int = _whole(present)
        minimum, maximum = _widened(low, high, as_int)
        spec = {"dtype": "int" if as_int else "float", "min": minimum, "max": maximum}
        description = f"Observed: {_show(low, as_int)} to {_show(high, as_int)}{note}."
        if (low, high) == (0.0, 1.0) and as_int:
            ones = 100.0 * float((numbers == 1).mean())
            shown = f"{ones:.0f}" if ones >= 10 else f"{ones:.2g}"
            description = f"Observed: a 0/1 flag, 1 in {shown} % of the rows{note}."
    else:
        return None, f"its type {values.dtype} is not int, float or category"
    if missing:
        spec["nullable"] = True
    spec["description"] = description
    return spec, ""


# --- the target ---------------------------------------------------------------------------------------------


def _labels(present: pd.Series) -> list[int | str]:
    """The distinct target values, sorted: whole numbers as ints, anything else as strings."""
    if pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(present.dtype):
        if _whole(present):
            return sorted({int(value) for value in present})
        return sorted({str(value) for value in present}, key=lambda text: float(text))
    return sorted({str(value) for value in present})


def _guess_task(present: pd.Series) -> str:
    distinct = present.nunique()
    numeric = pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(present.dtype)
    if distinct == 2:
        return "binary"
    if distinct < 2:
        raise DraftError(f"the target has {distinct} distinct value(s): nothing to learn")
    if numeric:
        return "multiclass" if distinct <= MAX_CLASSES and _whole(present) else "regression"
    if distinct <= MAX_CLASSES:
        return "multiclass"
    raise DraftError(
        f"the target is not numeric and has {distinct} distinct values (more than {MAX_CLASSES}): "
        "pass --task multiclass if they really are classes"
    )


def _target_spec(name: str, values: pd.Series, task: str | None) -> tuple[dict[str, Any], str, str]:
    """(target mapping, how the task was chosen, a comment for the classes line)."""
    present = values.dropna()
    if present.empty:
        raise DraftError(f"the target column {name!r} has no values")
    chosen = task or _guess_task(present)
    how = "--task" if task else "guessed"
    missing = int(values.isna().sum())
    no_target = f"; {missing} rows have no target" if missing else ""
    spec: dict[str, Any] = {"column": name, "task": chosen}
    if chosen == "regression":
        if not pd.api.types.is_numeric_dtype(present.dtype) or pd.api.types.is_bool_dtype(present.dtype):
            raise DraftError(f"a regression target must be numeric; {name!r} is {values.dtype}")
        numbers = present.astype("float64")
        low, high = float(numbers.min()), float(numbers.max())
        as_int = _whole(present)
        spec["min"], spec["max"] = _widened(low, high, as_int)
        spec["description"] = f"Observed: {_show(low, as_int)} to {_show(high, as_int)}{no_target}."
        return spec, how, ""
    labels = _labels(present)
    if chosen == "binary" and len(labels) != 2:
        raise DraftError(f"a binary target needs exactly 2 distinct values; {name!r} has {len(labels)}")
    if chosen == "multiclass" and len(labels) < 3:
        raise DraftError(f"a multiclass target needs at least 3 distinct values; {name!r} has {len(labels)}")
    counts = present.map(lambda value: _label_of(value, labels)).value_counts()
    shares = ", ".join(f"{label} ({100.0 * counts.get(label, 0) / len(present):.0f} %)" for label in labels)
    spec["classes"] = labels
    spec["description"] = f"Observed: {shares} of {len(present)} rows{no_target}."
    comment = ""
    if chosen == "binary":
        comment = f"the second ({labels[1]}) is the positive class, the score its probability: swap if wrong"
    return spec, how, comment


def _label_of(value: Any, labels: list[int | str]) -> int | str:
    if labels and isinstance(labels[0], int):
        return int(value)
    return str(value)


# --- the draft ----------------------------------------------------------------------------------------------


def draft_contract(
    frame: pd.DataFrame,
    target: str,
    *,
    task: str | None = None,
    id_column: str | None = None,
    timestamp_column: str | None = None,
    name: str = "data",
    source: str = "",
    command: str = "",
) -> Draft:
    """Draft the contract of `frame` (raises DraftError, or ContractError when the draft does not parse).

    `id_column` / `timestamp_column`: None guesses, "" means there is none.
    """
    frame = frame.rename(columns=str)
    if target not in frame.columns:
        known = ", ".join(map(repr, frame.columns))
        raise DraftError(f"no column {target!r} (the target); the columns are: {known}")
    for option, column in (("--id", id_column), ("--timestamp", timestamp_column)):
        if column and column not in frame.columns:
            raise DraftError(f"no column {column!r} ({option})")
    others = [column for column in frame.columns if column != target]
    if id_column is None:
        id_column = next((column for column in others if _id_candidate(column, frame[column])), "")
    dates = [column for column in others if column != id_column and _looks_like_dates(frame[column])]
    timestamp_note = "given with --timestamp"
    if timestamp_column is None:
        timestamp_column, timestamp_note = _guess_timestamp(dates)
    if id_column and id_column == timestamp_column:
        raise DraftError("the id and the timestamp must be different columns")
    for column in (id_column, timestamp_column):
        if column == target:
            raise DraftError(f"{column!r} is the target: it cannot also be the id or the timestamp")

    target_spec, how, classes_comment = _target_spec(target, frame[target], task)
    columns: dict[str, dict[str, Any]] = {}
    left_out: dict[str, str] = {}
    for column in others:
        if column in (id_column, timestamp_column):
            continue
        if column in dates:
            left_out[column] = "dates: not a model input (derive a number from them upstream)"
            continue
        spec, reason = _column_spec(column, frame[column])
        if spec is None:
            left_out[column] = reason
        else:
            columns[column] = spec
    if not columns:
        raise DraftError(
            "no column is left as a model input: "
            + "; ".join(f"{column} ({reason})" for column, reason in left_out.items())
        )

    description = f"Drafted from {source or 'a table'}: {len(frame)} rows."
    document: dict[str, Any] = {"name": name, "description": description}
    if id_column:
        document["id"] = {"column": id_column}
    if timestamp_column:
        document["timestamp"] = {"column": timestamp_column}
    document["target"] = target_spec
    document["columns"] = columns
    parse_contract(yaml.safe_load(yaml.safe_dump(document)), source="the draft")

    text = _render(
        document,
        left_out,
        header=_header(command, source, frame, task_guessed=how == "guessed"),
        classes_comment=classes_comment,
        timestamp_note=timestamp_note,
    )
    parsed = yaml.safe_load(text)
    if parsed != yaml.safe_load(yaml.safe_dump(document)):
        raise ContractError("the draft's text does not read back as the drafted contract (a bug)")
    parse_contract(parsed, source="the draft")
    return Draft(document, text, left_out)


def _guess_timestamp(dates: Sequence[str]) -> tuple[str, str]:
    """(the event-time column guessed among the date columns, or "", and why), for the draft's comment."""
    births = [column for column in dates if _BIRTH_NAME.search(column)]
    events = [column for column in dates if column not in births]
    not_births = ""
    if births:
        named = ", ".join(repr(column) for column in births)
        not_births = f"; not {named}: a date of birth, not when an event happened"
    if events:
        others = f" of {len(events)}" if len(events) > 1 else ""
        return events[0], f"guessed: the first date column{others}{not_births}"
    if births:
        return "", f"none taken{not_births}; --timestamp {_shell_word(births[0])} would take it"
    return "", ""


HEADER = (
    "# DRAFT data contract: review every line before you commit it. It describes what the data showed,",
    "# not what it may be: check the ranges (observed, widened by 10 %), the categories, nullable, the task",
    "# and its classes, and replace the 'Observed' descriptions with what each column means.",
    "# docs/data-contract.md explains every key.",
)


def _header(command: str, source: str, frame: pd.DataFrame, *, task_guessed: bool) -> list[str]:
    guessed = "guessed (pass --task to choose)" if task_guessed else "given with --task"
    return [
        *HEADER,
        f"# Drafted by: {_comment_text(command)}" if command else "# Drafted by contract_draft.",
        f"# From {_comment_text(source or 'a table')}: {len(frame)} rows, {len(frame.columns)} columns; "
        f"the task was {guessed}.",
    ]


def _render(
    document: dict[str, Any],
    left_out: dict[str, str],
    *,
    header: list[str],
    classes_comment: str,
    timestamp_note: str = "",
) -> str:
    """The contract as YAML in the layout of the template's contract.yaml, with the draft's comments."""
    lines = [*header]
    lines.append(f"name: {_scalar(document['name'])}")
    lines.append(f"description: {_scalar(document['description'])}")
    if "id" in document:
        lines += [
            "id:",
            f"  column: {_scalar(document['id']['column'])}",
            "  # pattern: a regular expression every id matches (optional)",
        ]
    else:
        lines.append("# id: none found (a column id or ..._id of unique values): add it if the rows have one")
    if "timestamp" in document:
        column = _scalar(document["timestamp"]["column"])
        lines += [
            f"# timestamp: {column} ({_comment_text(timestamp_note)}).",
            "# The event time: `make pipeline` holds out the latest rows by it (split.strategy auto). If",
            "# it is not when each row's event happened (a date of birth, a contract start), remove these",
            "# lines: the split is then random (stratified for classes).",
            "timestamp:",
            f"  column: {column}",
        ]
    elif timestamp_note:
        lines += [
            f"# timestamp: {_comment_text(timestamp_note)}.",
            "# Without a timestamp, `make pipeline` splits train/test at random (stratified for classes).",
        ]
    else:
        lines.append("# timestamp: none found (a column of dates): add the event time if the rows have one")
    target = document["target"]
    lines += ["target:", f"  column: {_scalar(target['column'])}", f"  task: {target['task']}"]
    if "classes" in target:
        comment = f"  # {classes_comment}" if classes_comment else ""
        lines.append(f"  classes: {_scalar(target['classes'])}{comment}")
    else:
        lines += [f"  min: {_scalar(target['min'])}", f"  max: {_scalar(target['max'])}"]
    lines.append(f"  description: {_scalar(target['description'])}")
    lines.append("columns:  # the model inputs, in request order")
    for column, spec in document["columns"].items():
        lines.append(f"  {_scalar(column)}:")
        lines += [f"    {key}: {_scalar(value)}" for key, value in spec.items()]
    lines += [f"  # left out: {_comment_text(column)} ({reason})" for column, reason in left_out.items()]
    lines += [
        "# derived: (optional) features computed from the columns; rules: (optional) business rules that",
        "# every row satisfies. See docs/data-contract.md.",
    ]
    return "\n".join(lines) + "\n"


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV (optionally compressed) or Parquet file as a frame; DraftError when it cannot be read."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if not path.is_file():
        raise DraftError(f"{path} is not a file")
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if ".csv" in suffixes or ".tsv" in suffixes:
            return pd.read_csv(path, sep="\t" if ".tsv" in suffixes else ",", low_memory=False)
    except Exception as error:  # any reader failure (parser, encoding, format) is reported the same way
        raise DraftError(f"cannot read {path}: {type(error).__name__}: {error}") from None
    raise DraftError(f"cannot read {path}: not a .csv or .parquet file")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.contract_draft",
        description="Draft contract.yaml from a CSV or Parquet file, for review.",
    )
    parser.add_argument("data", type=Path, help="a .csv or .parquet file")
    parser.add_argument("--target", required=True, help="the column the model predicts")
    parser.add_argument("--output", type=Path, default=Path("contract.yaml"), help="default: contract.yaml")
    parser.add_argument("--task", choices=("binary", "multiclass", "regression"), help="default: guessed")
    parser.add_argument("--id", dest="id_column", help="the id column (default: guessed; '' for none)")
    parser.add_argument(
        "--timestamp", dest="timestamp_column", help="the event time column (default: guessed; '' for none)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    args = parser.parse_args(argv)

    if args.output.exists() and not args.force:
        print(
            f"{args.output} exists: edit it, or overwrite it with --force (make contract ... FORCE=1)",
            file=sys.stderr,
        )
        return 1
    command_args = [str(args.data), "--target", args.target]
    options = {"--task": args.task, "--id": args.id_column, "--timestamp": args.timestamp_column}
    for option, value in options.items():
        if value is not None:
            command_args += [option, value]
    command = " ".join(["python", "-m", f"{__package__}.contract_draft", *map(_shell_word, command_args)])
    try:
        frame = read_frame(args.data)
        draft = draft_contract(
            frame,
            args.target,
            task=args.task,
            id_column=args.id_column,
            timestamp_column=args.timestamp_column,
            name=_table_name(args.data),
            source=args.data.name,
            command=command,
        )
    except (DraftError, ContractError) as error:
        print(f"cannot draft a contract from {args.data}: {error}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(draft.text, encoding="utf-8")
    kept = len(draft.document["columns"])
    print(
        f"Wrote {args.output}: {draft.document['target']['task']} target {args.target!r}, {kept} model inputs"
        + (f", {len(draft.left_out)} columns left out" if draft.left_out else "")
        + ". It is a draft: review it before you commit it."
    )
    return 0


def _table_name(path: Path) -> str:
    stem = path.name.split(".")[0]
    name = re.sub(r"[^0-9A-Za-z_]+", "_", stem).strip("_")
    return name or "data"


def _shell_word(word: str) -> str:
    if word and re.fullmatch(r"[\w@%+=:,./-]+", word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


if __name__ == "__main__":
    sys.exit(main())
