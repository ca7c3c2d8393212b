"""JSON as the standard has it, for every JSON file delegate writes (summary.json, report.json): a number that is
undefined (NaN, infinity) is written as null, never as the bare `NaN` Python's json module writes by default, which
other readers (jq, JavaScript, pandas with strict parsing) refuse. RFC 8259, section 6."""

import json
import math
from typing import Any


def defined(value: Any) -> Any:
    """`value` with every float that is NaN or infinite replaced by None, through dicts, lists and tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: defined(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [defined(item) for item in value]
    return value


def dumps(data: Any, indent: int | None = 2) -> str:
    """`data` as strict JSON text (undefined numbers as null; ValueError if one slipped through)."""
    return json.dumps(defined(data), indent=indent, allow_nan=False)
