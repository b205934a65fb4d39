"""Plain JSON and CSV forms of what the library returns.

One place for how records leave the program — CLI output, case files, and the web API
to come: datetimes as ISO 8601 UTC strings ending in ``Z``, floats rounded per field (scores
to 4 digits, seconds to 3, pixels to 1), nested values converted all the way down, CSV
cells holding lists and dicts as JSON.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

# digits kept per field name, wherever the field appears
ROUND_DIGITS = {
    "score": 4, "person_score": 4, "threshold": 4, "quality": 4, "best_score": 4,
    "first_seen_s": 3, "last_seen_s": 3, "best_shot_s": 3,
    "face_px": 1, "max_face_px": 1,
}


def iso(value: Any) -> Any:
    """A datetime as ISO 8601 (UTC as ``Z``); anything else unchanged."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def jsonable(value: Any, key: str | None = None) -> Any:
    """``value`` made of JSON types: dicts, lists and tuples converted item by item,
    datetimes as ISO strings, numpy scalars as Python numbers, floats of the fields in
    :data:`ROUND_DIGITS` rounded, ``best_shot_bbox`` to 0.1 px."""
    if isinstance(value, dict):
        return {k: jsonable(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if key == "best_shot_bbox":
            return [None if v is None else round(float(v), 1) for v in value]
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalar
    if isinstance(value, float) and key in ROUND_DIGITS:
        return round(value, ROUND_DIGITS[key])
    return value


def to_json(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2)


def to_csv(rows: list[dict], columns: list[str]) -> str:
    """CSV with a header (the rows' keys, or ``columns`` when there are none); list and
    dict cells as JSON."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()) if rows else columns,
                            extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
                         for k, v in jsonable(row).items()})
    return buf.getvalue()
