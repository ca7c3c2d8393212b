"""Sample records on disk: one JSON line per finished problem, appended and flushed as each completes."""

import json
from pathlib import Path
from typing import Any

SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"


class SampleWriter:
    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        # Flushed per line, so a killed run keeps every problem it finished.
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

