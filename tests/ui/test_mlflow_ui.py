"""The MLflow UI in headless Chromium: the runs an evaluation makes and the run a report logs, as a user sees them.

One store is built for the module: three finished runs (llm, slm, router; 3 built-in problems each, models served by
the scripted OpenAI-compatible server) made in-process by `delegate.job.run_job`, then a report run made by
`delegate-report`'s `main`, and in an experiment of its own a sweep of two jobs ended by the sweep's callback.
`mlflow server` serves it on loopback and Chromium opens its pages; every page is screenshotted to
outputs/test-artifacts/mlflow-ui/ (kept after the test) and the paths are printed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from delegate.compose import compose_config
from delegate.config.schema import DataConfig, TrackingConfig
from delegate.data import load_problems
from delegate.job import run_job
from delegate.records import SampleRecord, read_records
from delegate.report.runs import REPORT_TAG
from delegate.run_folder import ACCURACY_PLOT, COMPARISON_CSV, REPORT_MD, SAMPLES_FILE, SUMMARY_FILE
from delegate.sweep import SWEEP_TAG, SweepSummary, sweep_run_name
from delegate.testing.scripted_server import Reply, ScriptedServer
from delegate.tracking.mlflow_run import connect_store, default_artifact_location
from delegate.tracking.verdicts import CORRECT, GOLD, PROBLEMS_TABLE
from pipelines import report
from tests.support import browser
from tests.support.browser import browser_missing, chromium, visible_text, wait_for_text, wait_until
from tests.support.mlflow_server import mlflow_server

# The UI tests take 20-40 s on 2 busy cores: `mlflow server` alone takes 10-25 s to start.
slow = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "outputs" / "test-artifacts" / "mlflow-ui"
EXPERIMENT = "delegate-ui"
SWEEP_EXPERIMENT = "delegate-ui-sweep"
# The classic runs view; without it MLflow 3 opens an experiment holding traces on its GenAI overview.
CLASSIC = "workflowType=machine_learning"
GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}


def require_browser() -> None:
    """Skip without Chromium here; in CI (`CI` set) fail instead, so the check cannot quietly vanish."""
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI is set but the browser test cannot run: {reason}")
    pytest.skip(reason)


def scripted_reply(request: dict) -> Reply:
    """The router's LLM delegates once, then answers. The LLM is always right, the SLM only on even golds."""
    messages = request["messages"]
    if request.get("tools") and not any(m["role"] == "tool" for m in messages):
        return Reply(tool_calls=[{"name": "ask_math_assistant", "arguments": '{"question": "What is 6*8?"}'}])
    text = "\n".join(m.get("content") or "" for m in messages)
    gold = next((g for q, g in GOLD_BY_QUESTION.items() if q in text), "48")
    right = request["model"] == "scripted-llm" or int(gold) % 2 == 0
    return Reply(content=f"So the answer is \\boxed{{{gold if right else -1}}}.")


def job_config(root: Path, tracking_uri: str, base_url: str, strategy: str, samples: int, experiment: str):
    return compose_config(
        [
            "experiment=local",
            f"strategy={strategy}",
            f"samples={samples}",
            "llm=openai-compatible",
            f"llm.base_url={base_url}",
            "llm.model=scripted-llm",
            "llm.name=scripted-llm",
            "slm=openai-compatible",
            f"slm.base_url={base_url}",
            "slm.model=scripted-slm",
            "slm.name=scripted-slm",
            f"tracking.uri={tracking_uri}",
            f"tracking.experiment={experiment}",
            f"cache.path={root}/responses.sqlite",
        ]
    )


def make_runs(root: Path, tracking_uri: str, base_url: str) -> list[dict[str, Any]]:
    """Three finished runs (llm, slm, router; 3 problems each) in the store; their summaries."""
    return [
        run_job(job_config(root, tracking_uri, base_url, strategy, 3, EXPERIMENT), root, root / "outputs" / strategy)
        for strategy in ("llm", "slm", "router")
    ]


@dataclass
class Sweep:
    experiment_id: str
    run_name: str
    job_names: list[str]


def make_sweep(root: Path, tracking_uri: str, base_url: str) -> Sweep:
    """A sweep of two jobs (llm, router; 2 problems each) in its own experiment, ended by the sweep's callback, as
    `delegate-eval -m` runs it (the jobs get the tag `sweep_tags()` gives them there; tests/tracking/test_verdicts.py
    runs the real command)."""
    sweep_dir = root / "outputs" / "multirun" / "2026-11-29" / "18-40-00-123456"
    names = []
    for number, strategy in enumerate(("llm", "router")):
        cfg = job_config(root, tracking_uri, base_url, strategy, 2, SWEEP_EXPERIMENT)
        names.append(
            run_job(cfg, root, sweep_dir / f"{number}-{strategy}", extra_tags={SWEEP_TAG: str(sweep_dir)})["run_name"]
        )
    hydra = {"sweep": {"dir": str(sweep_dir)}, "runtime": {"cwd": str(root)}}
    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": hydra, "tracking": {"uri": tracking_uri}}))
    experiment_id = MlflowClient(tracking_uri).get_experiment_by_name(SWEEP_EXPERIMENT).experiment_id
    return Sweep(experiment_id, sweep_run_name(sweep_dir), names)


@dataclass
class UI:
    url: str
    experiment_id: str
    summaries: list[dict[str, Any]]
    report_run_id: str
    report_run_name: str
    report_artifacts: list[str]
    report_dir: Path
    root: Path
    sweep: Sweep
    driver: Any

    def open(self, fragment: str) -> None:
        """Open `#/<fragment>` in the classic (model training) view of the UI."""
        self.driver.get(f"{self.url}/#/{fragment}{'&' if '?' in fragment else '?'}{CLASSIC}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[UI]:
    require_browser()
    root = tmp_path_factory.mktemp("ui")
    tracking_uri = f"sqlite:///{root}/mlflow.db"
    # The tables exist before the server and the jobs touch the database, so neither migrates it under the other.
    experiment_id = connect_store(TrackingConfig(uri=tracking_uri, experiment=EXPERIMENT), root).experiment_id
    with (
        mlflow_server(
            tracking_uri, root / "mlflow-server.log", "--default-artifact-root", default_artifact_location(tracking_uri)
        ) as (url, wait_healthy),
        ScriptedServer(scripted_reply) as models,
    ):
        summaries = make_runs(root, tracking_uri, models.base_url)
        sweep = make_sweep(root, tracking_uri, models.base_url)
        report_dir = root / "report"
        report.main(
            ["--runs", *(s["run_id"] for s in summaries), "--out", str(report_dir), "--tracking-uri", tracking_uri]
        )
        client = MlflowClient(tracking_uri)
        [report_run] = client.search_runs([experiment_id], f"tags.`{REPORT_TAG}` = 'true'")
        report_artifacts = [a.path for a in client.list_artifacts(report_run.info.run_id)]
        wait_healthy()
        with chromium(root / "chromium-profile") as driver:
            yield UI(
                url,
                experiment_id,
                summaries,
                report_run.info.run_id,
                report_run.info.run_name,
                report_artifacts,
                report_dir,
                root,
                sweep,
                driver,
            )


def screenshot(driver, name: str) -> Path:
    """Save what the browser shows as outputs/test-artifacts/mlflow-ui/<name>.png and print the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def png_width_px(path: Path) -> int:
    """A PNG's width from its IHDR chunk (bytes 16-19, big-endian; PNG spec, section 11.2.2)."""
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


def close_assistant(driver) -> None:
    """Close MLflow's assistant side panel, if it is open, so the screenshots show the page."""
    for button in driver.find_elements("css selector", '[data-component-id="mlflow.assistant.chat_panel.close"]'):
        button.click()


@contextmanager
def shot(driver, name: str) -> Iterator[None]:
    """Screenshot the page once the block is done, whether its waits succeeded or not."""
    try:
        yield
    finally:
        screenshot(driver, name)


@pytest.mark.parametrize("ci", ["", "true"])
def test_without_chromium_ci_fails_and_elsewhere_skips(monkeypatch, tmp_path, ci):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(
        outcome, match="no-chromium not found: apt-get install -y --no-install-recommends chromium chromium-driver"
    ):
        require_browser()


@slow
def test_the_runs_table_lists_every_run(ui):
    ui.open(f"experiments/{ui.experiment_id}/runs")
    with shot(ui.driver, "01-runs-table"):
        names = [s["run_name"] for s in ui.summaries] + [ui.report_run_name]
        wait_for_text(ui.driver, f"{len(names)} matching runs", *names)
        close_assistant(ui.driver)


@slow
def test_the_chart_view_shows_each_runs_accuracy(ui):
    ui.open(f"experiments/{ui.experiment_id}/runs?compareRunsMode=CHART")
    card_xpath = '//*[@data-testid="experiment-view-compare-runs-card"][.//h4[normalize-space()="accuracy"]]'
    with shot(ui.driver, "02-accuracy-chart"):
        close_assistant(ui.driver)
        expected = {f"{s['accuracy']:.2f}" for s in ui.summaries}
        assert len(expected) > 1, "the scripted models should give the runs different accuracies"
        # Each bar is labelled with its run's value once the chart has the runs' metrics.
        wait_until(
            ui.driver,
            lambda d: expected <= set(d.find_element("xpath", card_xpath).text.split()),
            f"accuracy chart with bars labelled {sorted(expected)}",
        )


@slow
def test_a_run_page_lists_the_runs_artifacts(ui):
    router = ui.summaries[-1]
    ui.open(f"experiments/{ui.experiment_id}/runs/{router['run_id']}/artifacts")
    with shot(ui.driver, "03-router-run-artifacts"):
        wait_for_text(ui.driver, router["run_name"], SAMPLES_FILE, SUMMARY_FILE)


@slow
def test_the_report_run_lists_its_tables_and_plots_and_previews_a_plot(ui):
    assert {REPORT_MD, COMPARISON_CSV, ACCURACY_PLOT} <= set(ui.report_artifacts)
    ui.open(f"experiments/{ui.experiment_id}/runs/{ui.report_run_id}/artifacts")
    with shot(ui.driver, "04-report-artifacts"):
        wait_for_text(ui.driver, *ui.report_artifacts)
    ui.driver.find_element("xpath", f'//*[normalize-space(text())="{ACCURACY_PLOT}"]').click()
    width_px = png_width_px(ui.report_dir / ACCURACY_PLOT)
    with shot(ui.driver, "05-report-accuracy-plot"):
        # The preview is the file fetched from the server's artifact endpoint, shown from a blob: URL; the same
        # width as the file on disk says it is this plot, decoded, not a placeholder icon.
        wait_until(
            ui.driver,
            lambda d: d.execute_script(
                "return [...document.images].some(i => i.src.startsWith('blob:') && i.complete && i.naturalWidth === arguments[0])",
                width_px,
            ),
            f"preview of {ACCURACY_PLOT} ({width_px} px wide)",
        )


def slm_run(ui: UI) -> tuple[dict[str, Any], list[SampleRecord]]:
    """The slm run (the scripted SLM is right only on even golds: some answers right, some wrong) and its records."""
    [summary] = [s for s in ui.summaries if s["run_name"].startswith("slm-")]
    return summary, read_records(ui.root / "outputs" / "slm" / SAMPLES_FILE)


def click(driver, xpath: str, what: str) -> None:
    """Click the element at `xpath` once the page has drawn it."""
    wait_until(driver, lambda d: d.find_element("xpath", xpath), what).click()


def trace_rows(driver) -> list[str]:
    """The text of each row of the Traces tab's table (a row holds one trace: request, response, assessments, state)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('[role=row]')].map(r => r.innerText).filter(t => t.includes('tr-'))"
    )


@slow
def test_the_traces_tab_shows_each_problems_gold_and_correctness(ui):
    summary, records = slm_run(ui)
    wrong = [r for r in records if not r.correct]
    assert wrong and len(wrong) < len(records), "the scripted SLM should get some problems right and some wrong"
    ui.driver.get(f"{ui.url}/#/experiments/{ui.experiment_id}/runs/{summary['run_id']}/traces")
    with shot(ui.driver, "06-traces-correctness"):
        close_assistant(ui.driver)
        wait_for_text(ui.driver, GOLD, CORRECT, f"{len(records)} of {len(records)}")
        wait_until(ui.driver, lambda d: len(trace_rows(d)) == len(records), f"{len(records)} trace rows")
        # Each problem's row shows its gold answer and whether it was answered right; a wrong answer's trace still ran
        # fine (OK): the verdict is the `correct` assessment, not the trace's state.
        for record in records:
            [row] = [row for row in trace_rows(ui.driver) if f'"id": {record.id},' in row]
            cells = row.split("\n")
            assert record.gold in cells and ("True" if record.correct else "False") in cells and "OK" in cells, row


@slow
def test_the_traces_tab_filters_the_wrong_answers(ui):
    summary, records = slm_run(ui)
    wrong = sorted(r.id for r in records if not r.correct)
    ui.driver.get(f"{ui.url}/#/experiments/{ui.experiment_id}/runs/{summary['run_id']}/traces")
    driver = ui.driver
    with shot(driver, "07-traces-wrong-answers"):
        close_assistant(driver)
        wait_for_text(driver, f"{len(records)} of {len(records)}")
        # As a user does: Filters, then Assessments / correct / = / False, then Apply.
        click(driver, '//button[normalize-space(.)="Filters"]', "the Filters button")
        click(driver, '//*[@role="dialog"]//*[normalize-space(text())="Select column"]', "the filter's column picker")
        click(driver, '//*[@role="option"][normalize-space(.)="Assessments"]', "the Assessments column")
        click(driver, '//*[@role="dialog"]//button[normalize-space(.)="Select name"]', "the assessment name picker")
        click(driver, f'//*[@role="option"][normalize-space(.)="{CORRECT}"]', f"the `{CORRECT}` assessment")
        click(driver, '//*[@role="dialog"]//*[normalize-space(text())="Select"]', "the value picker")
        click(driver, '//*[@role="option"][normalize-space(.)="False"]', "the value False")
        click(
            driver, '//*[@data-component-id="mlflow.evaluations_review.table_ui.apply_filters_button"]', "Apply filters"
        )
        wait_for_text(driver, f"{len(wrong)} of {len(records)}")
        wait_until(
            driver,
            lambda d: sorted(int(row.split('"id": ')[1].split(",")[0]) for row in trace_rows(d)) == wrong,
            f"only the wrong answers' traces (problems {wrong})",
        )
        assert all("False" in row.split("\n") for row in trace_rows(driver))
        # The filter is part of the page's address: the view can be bookmarked.
        assert "filter=" in driver.current_url


@slow
def test_a_wrong_answers_trace_shows_its_gold_and_score(ui):
    summary, records = slm_run(ui)
    wrong = next(r for r in records if not r.correct)
    ui.driver.get(f"{ui.url}/#/experiments/{ui.experiment_id}/runs/{summary['run_id']}/traces")
    with shot(ui.driver, "08-trace-assessments"):
        close_assistant(ui.driver)
        click(ui.driver, f"//*[contains(text(), {wrong.question[:30]!r})]", "the wrong answer's trace")
        click(ui.driver, '//button[contains(normalize-space(.), "Assess")]', "the trace's Assess button")
        text = wait_for_text(ui.driver, "Feedback (1)", "Expectations (1)", wrong.dataset)
        panel = text[text.index("Feedback (1)") :]
        assert panel.split("\n")[:5] == ["Feedback (1)", "Add feedback", CORRECT, "False", "Expectations (1)"], panel
        assert f"{GOLD}\n{wrong.dataset}\n{wrong.gold}" in panel


@slow
def test_a_run_page_shows_its_description_and_dataset(ui):
    summary, records = slm_run(ui)
    ui.open(f"experiments/{ui.experiment_id}/runs/{summary['run_id']}")
    with shot(ui.driver, "09-run-description"):
        close_assistant(ui.driver)
        wait_for_text(
            ui.driver,
            "Description",
            f"{summary['method']} on {len(records)} problems of {records[0].dataset}",
            f"accuracy {summary['accuracy']:.1%} [{summary['accuracy_ci_low']:.1%}, {summary['accuracy_ci_high']:.1%}]",
            "Datasets",
            records[0].dataset,
        )


@slow
def test_a_run_shows_its_per_problem_table(ui):
    summary, records = slm_run(ui)
    ui.open(f"experiments/{ui.experiment_id}/runs/{summary['run_id']}/artifacts")
    with shot(ui.driver, "10-problem-table"):
        close_assistant(ui.driver)
        click(ui.driver, f'//*[normalize-space(text())="{PROBLEMS_TABLE}"]', PROBLEMS_TABLE)
        wait_for_text(
            ui.driver, "View as table", "id", "question", GOLD, "extracted", "extraction_rule", CORRECT, "verdict"
        )
        # One table row per problem: id, question (cut short), gold, extracted, rule, correct, verdict, ...
        rows = wait_until(
            ui.driver,
            lambda d: (
                [
                    r
                    for r in d.execute_script(
                        "return [...document.querySelectorAll('[role=table] [role=row]')]"
                        ".map(r => [...r.querySelectorAll('[role=cell]')].map(c => c.innerText))"
                    )
                    if r
                ]
                or None
            ),
            "the table's rows",
        )
        assert sorted((r[0], r[2], r[3], r[5]) for r in rows) == sorted(
            (str(rec.id), rec.gold, rec.extracted, str(rec.correct).lower()) for rec in records
        )


@slow
def test_a_sweeps_runs_are_grouped_under_its_run(ui):
    ui.open(f"experiments/{ui.sweep.experiment_id}/runs")
    driver = ui.driver
    with shot(driver, "11-sweep-grouped"):
        close_assistant(driver)
        wait_for_text(driver, ui.sweep.run_name, f"{1 + len(ui.sweep.job_names)} matching runs")
        # Collapsed: only the sweep's run is listed until it is opened.
        assert not any(name in visible_text(driver) for name in ui.sweep.job_names)
        click(
            driver,
            f'//a[normalize-space(.)="{ui.sweep.run_name}"]/ancestor::span[starts-with(@id, "cell-")][1]//button',
            "the sweep run's expand button",
        )
        wait_for_text(driver, *ui.sweep.job_names)
