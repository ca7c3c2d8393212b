"""Measure the pipeline on this machine and print one JSON object; every ratio is measured within this one run.

    HF_HUB_OFFLINE=1 .venv/bin/python -m scripts.benchmark

- concurrency_speedup: the router over 64 GSM8K problems against scripted LLM and SLM servers that take 100 ms a
  call; wall time at concurrency 1 ÷ wall time at concurrency 16 (goal >= 12).
- slm_batching_speedup: 16 concurrent sub-questions to the in-process SmolLM2 SLM; generated tokens per second with
  batching (max batch 8) ÷ without (goal >= 3).
- cache_rerun_ratio / cache_rerun_model_calls: the concurrency-1 router run again with a warm response cache
  (goal <= 0.05 and 0).
- overhead_ms_per_problem: all 1,319 GSM8K test problems through the whole job (loading, scoring, samples.jsonl,
  MLflow params, metrics, traces and artifacts) with an instant scripted model; job wall time ÷ problems (goal <= 10);
  overhead_ms_per_problem_traces_off: the same with tracking.traces=false.
"""

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing
import sqlite3
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from delegate.compose import compose_config
from delegate.evaluation import Evaluation
from delegate.job import run_job
from delegate.models import build_model
from delegate.models.base import ChatRequest
from delegate.models.cache import ResponseCache
from delegate.strategies.prompting import render_messages
from delegate.testing.scripted_server import Reply, ScriptedServer

GSM8K_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
SUB_QUESTIONS = [f"What is {a} times {b}?" for a, b in zip(range(12, 28), range(7, 23))]


def delegating_llm(request: dict) -> Reply:
    """Ask the SLM once (about this problem), then answer: two LLM calls and one SLM call per problem, 100 ms each."""
    if request.get("tools") and not any(m["role"] == "tool" for m in request["messages"]):
        sub_question = f"How many in: {request['messages'][-1]['content'][:80]}"
        call = {"name": "ask_math_assistant", "arguments": json.dumps({"question": sub_question})}
        return Reply(tool_calls=[call], prompt_tokens=300, completion_tokens=25, delay_s=0.1)
    return Reply(content="The answer is \\boxed{48}.", prompt_tokens=340, completion_tokens=12, delay_s=0.1)


def solving_slm(request: dict) -> Reply:
    return Reply(content="6*8 = 48, so \\boxed{48}.", prompt_tokens=60, completion_tokens=30, delay_s=0.1)


def instant_llm(request: dict) -> Reply:
    return Reply(content="The answer is \\boxed{18}.", prompt_tokens=100, completion_tokens=10)


def _serve(responder, port_queue, stop, request_count) -> None:
    def counted(request: dict) -> Reply:
        with request_count.get_lock():
            request_count.value += 1
        return responder(request)

    server = ScriptedServer(counted).start()
    port_queue.put(server.port)
    stop.wait()
    server.stop()


@contextlib.contextmanager
def server_process(responder):
    """A scripted server in its own process, so its work does not share this process's interpreter lock."""
    context = multiprocessing.get_context("spawn")
    port_queue, stop, request_count = context.Queue(), context.Event(), context.Value("i", 0)
    process = context.Process(target=_serve, args=(responder, port_queue, stop, request_count), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{port_queue.get(timeout=60)}/v1", request_count
    finally:
        stop.set()
        process.join(timeout=10)


def router_config(llm_url: str, slm_url: str, data_path: Path, samples: int | None, concurrency: int, *extra: str):
    return compose_config(
        [
            "strategy=router",
            "llm=openai-compatible",
            f"llm.base_url={llm_url}",
            "slm=openai-compatible",
            f"slm.base_url={slm_url}",
            f"data.path={data_path}",
            f"samples={'null' if samples is None else samples}",
            f"concurrency={concurrency}",
            "tracking.traces=false",
            *extra,
        ]
    )


async def solve_phase_s(cfg, cache: ResponseCache | None) -> float:
    """Wall time of solving and scoring every problem (what concurrency and the cache change)."""
    evaluation = Evaluation.from_config(cfg, cache)
    started_s = time.perf_counter()
    async with evaluation:
        records = await evaluation.run()
    elapsed_s = time.perf_counter() - started_s
    assert not any(r.error for r in records), next(r.error for r in records if r.error)
    return elapsed_s


def measure_concurrency_and_cache(data_path: Path, workdir: Path) -> dict:
    with server_process(delegating_llm) as (llm_url, llm_calls), server_process(solving_slm) as (slm_url, slm_calls):
        serial_s = asyncio.run(solve_phase_s(router_config(llm_url, slm_url, data_path, 64, 1), None))
        parallel_s = asyncio.run(solve_phase_s(router_config(llm_url, slm_url, data_path, 64, 16), None))
        cache = ResponseCache(workdir / "cache.sqlite")
        cfg = router_config(llm_url, slm_url, data_path, 64, 1)
        first_s = asyncio.run(solve_phase_s(cfg, cache))
        calls_before = llm_calls.value + slm_calls.value
        rerun_s = asyncio.run(solve_phase_s(cfg, cache))
        rerun_calls = llm_calls.value + slm_calls.value - calls_before
        cache.close()
    return {
        "concurrency_speedup": serial_s / parallel_s,
        "cache_rerun_ratio": rerun_s / first_s,
        "cache_rerun_model_calls": rerun_calls,
        "details": {
            "router_64_problems_concurrency_1_s": serial_s,
            "router_64_problems_concurrency_16_s": parallel_s,
            "cache_first_run_s": first_s,
            "cache_rerun_s": rerun_s,
        },
    }


async def slm_tokens_per_s(max_batch_size: int, max_new_tokens: int) -> tuple[float, int, float]:
    cfg = compose_config(
        [
            "strategy=router",
            "slm=local",
            "device=cpu",
            f"slm.max_new_tokens={max_new_tokens}",
            f"slm.max_batch_size={max_batch_size}",
        ]
    )
    model = build_model(cfg.slm, "slm")
    slm_prompt = OmegaConf.to_object(cfg.strategy).slm_prompt  # the router's own prompt for sub-questions

    def messages(question: str) -> list[dict]:
        return render_messages(slm_prompt, question)

    await model.chat(ChatRequest(messages("What is 1 plus 1?")))  # load the weights and warm up outside the timing
    started_s = time.perf_counter()
    replies = await asyncio.gather(*(model.chat(ChatRequest(messages(q))) for q in SUB_QUESTIONS))
    elapsed_s = time.perf_counter() - started_s
    await model.aclose()
    tokens = sum(r.completion_tokens for r in replies)
    return tokens / elapsed_s, tokens, elapsed_s


def measure_batching(max_new_tokens: int) -> dict:
    off_tps, off_tokens, off_s = asyncio.run(slm_tokens_per_s(1, max_new_tokens))
    on_tps, on_tokens, on_s = asyncio.run(slm_tokens_per_s(8, max_new_tokens))
    return {
        "slm_batching_speedup": on_tps / off_tps,
        "details": {
            "slm_batching_off_tokens_per_s": off_tps,
            "slm_batching_off_tokens": off_tokens,
            "slm_batching_off_s": off_s,
            "slm_batching_on_tokens_per_s": on_tps,
            "slm_batching_on_tokens": on_tokens,
            "slm_batching_on_s": on_s,
        },
    }


def measure_overhead(data_path: Path, workdir: Path, *extra: str) -> dict:
    with server_process(instant_llm) as (llm_url, _):
        cfg = compose_config(
            [
                "strategy=llm",
                "llm=openai-compatible",
                f"llm.base_url={llm_url}",
                f"data.path={data_path}",
                "concurrency=16",
                "cache.enabled=false",
                f"tracking.uri=sqlite:///{workdir}/mlflow.db",
                *extra,
            ]
        )
        workdir.mkdir(parents=True, exist_ok=True)
        output_dir = workdir / "run"
        started_s = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the job's summary table; this script prints JSON only
            summary = run_job(cfg, workdir, output_dir)
        elapsed_s = time.perf_counter() - started_s
    with sqlite3.connect(workdir / "mlflow.db") as db:
        traces = db.execute("SELECT COUNT(*) FROM trace_info").fetchone()[0]
    return {"n": int(summary["n_samples"]), "elapsed_s": elapsed_s, "traces": traces}


def measure_overheads(data_path: Path, workdir: Path) -> dict:
    """The default job (a trace per problem), and the same job with tracking.traces=false."""
    traced = measure_overhead(data_path, workdir / "traced")
    untraced = measure_overhead(data_path, workdir / "untraced", "tracking.traces=false")
    return {
        "overhead_ms_per_problem": 1000 * traced["elapsed_s"] / traced["n"],
        "overhead_ms_per_problem_traces_off": 1000 * untraced["elapsed_s"] / untraced["n"],
        "details": {
            "overhead_problems": traced["n"],
            "overhead_job_s": traced["elapsed_s"],
            "overhead_traces_logged": traced["traces"],
            "overhead_job_traces_off_s": untraced["elapsed_s"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the pipeline's speed figures as JSON.")
    parser.add_argument("--data", type=Path, default=GSM8K_TEST, help="GSM8K test.jsonl")
    parser.add_argument("--slm-max-new-tokens", type=int, default=64)
    arguments = parser.parse_args()
    if not arguments.data.is_file():
        parser.error(f"--data {arguments.data}: no such file; give the path of GSM8K's test.jsonl")
    figures: dict = {"details": {}}
    with tempfile.TemporaryDirectory() as workdir:
        for part in (
            measure_concurrency_and_cache(arguments.data, Path(workdir)),
            measure_batching(arguments.slm_max_new_tokens),
            measure_overheads(arguments.data, Path(workdir)),
        ):
            figures["details"] |= part.pop("details")
            figures |= part
    figures["details"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures["details"].items()}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}, indent=2))


if __name__ == "__main__":
    main()
