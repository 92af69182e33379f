"""XTTS v2 on a GPU: time to first audio, real-time factor and 4 concurrent streams, through the real TTS server.

Needs a CUDA machine with `pip install -e '.[xtts]'` and the XTTS v2 weights in a local folder (config.json,
model.pth, vocab.json, speakers_xtts.pth) — see speech/README.md, "XTTS v2 on a GPU". Nothing is downloaded.

    .venv/bin/python bench/xtts_gpu_check.py --model-dir /models/xtts_v2 [--reference me.wav] [--rounds 3]

Starts `python -m speech.tts` with TTS_ENGINES=xtts on a free port (or uses --url), optionally clones a voice from
--reference, then streams typical agent sentences at 24 kHz (XTTS's native rate) and 8 kHz, 1 and 4 at a time.
Writes bench/results/xtts_gpu.json and the "XTTS v2 (GPU)" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicectl.launch import tts_process  # noqa: E402
from voicectl.procs import free_port  # noqa: E402
from voicectl.speech_auth import speech_headers  # noqa: E402

BENCH_ORG = "bench"  # cloned voices belong to an organisation: the one this check clones for

RESULTS = ROOT / "bench" / "results" / "xtts_gpu.json"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
START, END = "<!-- xtts-gpu:start -->", "<!-- xtts-gpu:end -->"
TEXTS = [
    "Sure, I can help with that.",
    "Thanks for calling Acme Dental, this is Joe. How can I help you today?",
    "Your appointment is confirmed for Tuesday at nine thirty in the morning.",
    "Let me check that for you, it will only take a moment.",
]


async def once(client: httpx.AsyncClient, voice: str, text: str, rate: int) -> dict[str, float]:
    t0 = time.perf_counter()
    first = None
    size = 0
    body = {"input": text, "voice": voice, "model": "xtts", "sample_rate": rate, "language": "en"}
    async with client.stream("POST", "/v1/audio/speech", json=body,
                             headers=speech_headers("bench", BENCH_ORG)) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"{resp.status_code}: {(await resp.aread())[:300]!r}")
        async for chunk in resp.aiter_bytes():
            if first is None:
                first = time.perf_counter() - t0
            size += len(chunk)
    total = time.perf_counter() - t0
    audio_s = size / 2 / rate
    return {"first_audio_ms": 1000 * (first or total), "total_ms": 1000 * total, "audio_s": audio_s,
            "rtf": total / audio_s if audio_s else float("nan")}


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    ttfa = sorted(r["first_audio_ms"] for r in rows)
    return {
        "n": len(rows),
        "first_audio_p50_ms": round(statistics.median(ttfa)),
        "first_audio_p95_ms": round(ttfa[min(len(ttfa) - 1, int(0.95 * len(ttfa)))]),
        "rtf_p50": round(statistics.median(r["rtf"] for r in rows), 3),
    }


async def run(url: str, reference: Path | None, rounds: int) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=url, timeout=120, headers=speech_headers("bench", BENCH_ORG)) as client:
        if reference is not None:
            with reference.open("rb") as f:
                resp = await client.post(
                    "/v1/voices", files={"file": (reference.name, f, "audio/wav")},
                    data={"name": f"bench-{int(time.time())}", "language": "en", "engine": "xtts"},
                )
            resp.raise_for_status()
            voice = resp.json()["id"]
        else:
            voices = [v for v in (await client.get("/v1/voices")).json()["data"] if v["engine"] == "xtts"]
            if not voices:
                raise SystemExit("no xtts voice: pass --reference clip.wav or use weights with speakers_xtts.pth")
            voice = voices[0]["id"]
        await once(client, voice, "Warming up the model.", 24000)
        single: dict[int, list[dict[str, float]]] = {24000: [], 8000: []}
        for _ in range(rounds):
            for rate in single:
                for text in TEXTS:
                    single[rate].append(await once(client, voice, text, rate))
        concurrent: list[dict[str, float]] = []
        wall: list[float] = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            concurrent.extend(await asyncio.gather(*(once(client, voice, t, 8000) for t in TEXTS)))
            wall.append(time.perf_counter() - t0)
        if reference is not None:
            await client.delete(f"/v1/voices/{voice}")
    return {
        "voice": voice,
        "single_24k": summarize(single[24000]),
        "single_8k": summarize(single[8000]),
        "concurrent_4_8k": {**summarize(concurrent), "batch_wall_s_p50": round(statistics.median(wall), 2)},
        "raw": {"single_24k": single[24000], "single_8k": single[8000], "concurrent_4_8k": concurrent},
    }


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown GPU"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown GPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="XTTS v2 weights folder (TTS_XTTS_MODEL_DIR)")
    parser.add_argument("--url", help="a running TTS server with the xtts engine (skips starting one)")
    parser.add_argument("--reference", type=Path, help="WAV clip (3-60 s) to clone and use as the voice")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc = None
    url = args.url
    if url is None:
        if args.model_dir is None:
            raise SystemExit("--model-dir (or --url) is required")
        state = Path(tempfile.mkdtemp(prefix="xtts-bench-"))
        port = free_port()
        proc = tts_process(state, port=port, env={
            "TTS_ENGINES": "xtts", "TTS_DEFAULT_VOICE": "", "TTS_XTTS_MODEL_DIR": str(args.model_dir),
            "TTS_VOICES_DIR": str(state / "voices"), "VOICEAGENT_STATE_DIR": str(state),
        })
        proc.start_timeout = 600
        proc.start()
        url = f"http://127.0.0.1:{port}"
    try:
        result = asyncio.run(run(url, args.reference, args.rounds))
    finally:
        if proc is not None:
            proc.stop()
    result["gpu"] = gpu_name()
    result["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    rows = [("1 stream, 24 kHz", result["single_24k"]), ("1 stream, 8 kHz", result["single_8k"]),
            ("4 concurrent, 8 kHz", result["concurrent_4_8k"])]
    table = ["| Load | n | first audio p50 | first audio p95 | RTF p50 |", "|---|---|---|---|---|"]
    for name, s in rows:
        assert isinstance(s, dict)
        table.append(f"| {name} | {s['n']} | {s['first_audio_p50_ms']} ms | {s['first_audio_p95_ms']} ms | {s['rtf_p50']} |")
    print("\n".join(table))
    section = "\n".join([START, "## XTTS v2 (GPU)", "",
                         f"`bench/xtts_gpu_check.py` on {result['gpu']}, {result['measured_at']}, voice `{result['voice']}`.",
                         "", *table, END]) + "\n"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS_MD.write_text(text)
    print(f"wrote {RESULTS.relative_to(ROOT)} and the XTTS section of {BENCHMARKS_MD.name}")


if __name__ == "__main__":
    main()
