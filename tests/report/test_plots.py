"""The figures: one PNG per file, sized for reading, drawn even for one run at no cost."""

import struct

from delegate.records import RoleUsage
from delegate.report.analysis import analyse
from delegate.report.plots import write_plots
from delegate.report.runs import LoadedRun, label_runs
from delegate.run_folder import ACCURACY_PLOT, COST_PLOT, LATENCY_PLOT, TOKENS_PLOT
from tests.support.records import make_record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def test_four_figures_one_per_file(tmp_path):
    usage = {
        "llm": RoleUsage(calls=2, prompt_tokens=300, completion_tokens=80),
        "slm": RoleUsage(calls=1, prompt_tokens=40, completion_tokens=60),
    }
    runs = [
        LoadedRun(
            "a",
            "llm-run",
            "1",
            "llm",
            "llm (gpt-4o)",
            [make_record(i, correct=i % 2 == 0, latency_s=1 + i, cost_usd=0.004) for i in range(6)],
        ),
        LoadedRun(
            "b",
            "router-run",
            "1",
            "router",
            "router (gpt-4o -> qwen2.5-math-1.5b)",
            [make_record(i, correct=i < 5, latency_s=2 + i, usage=usage, cost_usd=0.001) for i in range(6)],
        ),
    ]
    label_runs(runs)
    paths = write_plots(analyse(runs, []), tmp_path)
    assert [p.name for p in paths] == [ACCURACY_PLOT, TOKENS_PLOT, LATENCY_PLOT, COST_PLOT]
    for path in paths:
        width, height = png_size(path)
        assert width >= 1200 and height >= 500


def test_one_free_run_still_plots(tmp_path):
    runs = [LoadedRun("a", "slm-run", "1", "slm", "slm (smollm2-135m)", [make_record(0, correct=False, cost_usd=0.0)])]
    label_runs(runs)
    assert all(path.stat().st_size > 0 for path in write_plots(analyse(runs, []), tmp_path))
