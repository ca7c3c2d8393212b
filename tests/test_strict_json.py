"""Every JSON file delegate writes is strict JSON: an undefined number is null, never a bare NaN."""

import json
import math

from delegate import strict_json


def test_undefined_numbers_are_null_at_any_depth():
    data = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": (2, math.nan), "e": "NaN", "f": 0.5}
    text = strict_json.dumps(data)
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None, {"c": None}], "d": [2, None], "e": "NaN", "f": 0.5}


def test_a_summary_with_no_token_counts_reads_back_with_a_strict_parser(tmp_path):
    from delegate.metrics import summarize
    from delegate.records import RoleUsage
    from tests.support.records import make_record

    missing = {"llm": RoleUsage(calls=1, usage_missing_calls=1), "slm": RoleUsage()}
    summary = summarize([make_record(0, usage=missing, error="TimeoutError: no reply")])
    assert math.isnan(summary["avg_llm_tokens"]) and math.isnan(summary["accuracy_clean"])

    def refuse(constant: str):
        raise ValueError(constant)

    read = json.loads(strict_json.dumps(summary), parse_constant=refuse)
    assert read["avg_llm_tokens"] is None and read["accuracy_clean"] is None
