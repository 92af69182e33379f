"""The LLM's first token against its prompt-evaluation threads (LLM_N_THREADS_BATCH), on an idle core and beside a
busy one: why a few voice-to-voice turns took 1.4-4.1 s on a shared 2-core box.

llama.cpp's threads wait for each other at every step of a graph by spinning, so a prompt evaluated on as many
threads as there are cores stalls whenever anything else (ASR, TTS, smart-turn, another tenant) takes one of them.
Two Llama instances with the server's settings (the bundled SmolLM2-135M, RAM prompt cache), one per thread count,
answer the same short call (system prompt, greeting, one question per turn, the reply kept in the history, as the
voice server asks) turn by turn, alternating; `--busy` processes spin beside them.

Usage: .venv/bin/python bench/llm_threads_bench.py [--turns 10] [--threads 1 --threads 2] [--busy 0 --busy 1]
Writes bench/results/llm_threads.json (or --results).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import machine  # noqa: E402
from bench.voice_latency import AGENT, MORE_QUESTIONS  # noqa: E402
from speech.llm.config import LlmServerSettings  # noqa: E402


def _spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x += i


def _llm(threads_batch: int, settings: LlmServerSettings) -> Any:
    from llama_cpp import Llama, LlamaRAMCache

    llm = Llama(model_path=str(settings.model_path()), n_ctx=settings.llm_n_ctx, n_threads=settings.llm_n_threads,
                n_threads_batch=threads_batch, n_batch=settings.llm_n_batch, logits_all=False, verbose=False)
    llm.set_cache(LlamaRAMCache(settings.llm_cache_size))
    llm.create_completion("Hello", max_tokens=1)  # as the server does at start-up
    return llm


def _first_token_ms(llm: Any, messages: list[dict[str, str]]) -> tuple[float, str]:
    started, first, text = time.perf_counter(), None, ""
    for chunk in llm.create_chat_completion(messages, max_tokens=AGENT["llm"]["max_tokens"],
                                            temperature=AGENT["llm"]["temperature"], stream=True):
        delta = chunk["choices"][0]["delta"].get("content")
        if delta and first is None:
            first = time.perf_counter() - started
        text += delta or ""
    return round(1000 * (first if first is not None else time.perf_counter() - started), 1), text.strip()


def run(threads: list[int], busy: int, turns: int, settings: LlmServerSettings) -> dict[int, list[float]]:
    llms = {n: _llm(n, settings) for n in threads}
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
    for p in spinners:
        p.start()
    start = [{"role": "system", "content": AGENT["system_prompt"]}, {"role": "assistant", "content": AGENT["greeting"]}]
    history = {n: list(start) for n in threads}
    firsts: dict[int, list[float]] = {n: [] for n in threads}
    try:
        for turn in range(turns):
            order = threads if turn % 2 == 0 else threads[::-1]
            for n in order:
                history[n].append({"role": "user", "content": MORE_QUESTIONS[turn % len(MORE_QUESTIONS)]})
                ms, reply = _first_token_ms(llms[n], history[n])
                history[n].append({"role": "assistant", "content": reply})
                firsts[n].append(ms)
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)
    return firsts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--threads", type=int, action="append", default=[], help="LLM_N_THREADS_BATCH values")
    parser.add_argument("--busy", type=int, action="append", default=[], help="spinning processes beside the LLM")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "llm_threads.json")
    args = parser.parse_args()
    settings = LlmServerSettings()
    threads = args.threads or [1, os.cpu_count() or 2]
    report: dict[str, Any] = {"machine": machine(), "load_start": round(os.getloadavg()[0], 2),
                              "generation_threads": settings.llm_n_threads, "turns": args.turns, "legs": []}
    for busy in args.busy or [0, 1]:
        firsts = run(threads, busy, args.turns, settings)
        for n, values in firsts.items():
            s = sorted(values)
            leg = {"busy": busy, "threads_batch": n, "first_token_ms": values, "p50": round(statistics.median(s), 1),
                   "max": s[-1], "warm_max": max(values[1:]) if len(values) > 1 else s[-1]}
            report["legs"].append(leg)
            print(f"busy={busy} threads_batch={n}: p50 {leg['p50']} ms, max {leg['max']} ms "
                  f"(after the first turn: {leg['warm_max']} ms)  {values}")
    report["load_end"] = round(os.getloadavg()[0], 2)
    args.results.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
