"""Offline voice models: load times, real-time factors, first-sentence latency, memory.

    .venv/bin/python bench/voice_models.py [--runs 10] [--json]

Real-time factor (RTF) = processing time / audio duration (below 1 is faster
than real time). The test utterance is made by the local TTS (~3 s), so the
run needs nothing but the installed packages. Figures are p50 over --runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable

UTTERANCE = "How fast should code reviews be on our team?"
ANSWER = (
    "Reviews should start **within one working day** [1]. Keep pull requests small, "
    "under four hundred lines, so they get read properly [2]. If it is urgent, ask in the team channel."
)


def rss_mb() -> float:
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def p50(fn: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """Median wall time, fastest wall time, median CPU time (all threads) of `runs` calls.

    On a shared machine wall time includes waiting for a core; CPU time does not.
    """
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    runs = max(10, args.runs)
    figures: dict[str, float | str | int] = {"runs": runs, "rss_start_mb": round(rss_mb(), 1)}
    if hasattr(os, "getloadavg"):
        figures["load_avg_1m"] = os.getloadavg()[0]  # other work on the machine skews wall times
    figures["cpus"] = os.cpu_count() or 0

    from allin.voice.audio import INPUT_RATE, to_input_rate
    from allin.voice.stt import LocalSTT
    from allin.voice.tts import LocalTTS, split_sentences
    from allin.voice.vad import EnergyDetector, SileroDetector

    # --- TTS ---
    tts = LocalTTS()
    started = time.perf_counter()
    tts.load()
    figures["tts_engine"] = tts.engine
    figures["tts_load_s"] = time.perf_counter() - started
    tts.synthesize("Warm up.")
    speech = tts.synthesize(UTTERANCE)
    speech_s = len(speech) / 2 / tts.rate
    t, fastest, cpu = p50(lambda: tts.synthesize(UTTERANCE), runs)
    figures["tts_audio_s"] = speech_s
    figures["tts_p50_s"] = t
    figures["tts_min_s"] = fastest
    figures["tts_cpu_p50_s"] = cpu
    figures["tts_rtf_p50"] = t / speech_s
    # First audio of an answer: Markdown -> sentences -> the first one synthesized.
    t, _, _ = p50(lambda: tts.synthesize(split_sentences(ANSWER)[0]), runs)
    figures["tts_first_sentence_p50_s"] = t

    # --- STT ---
    pcm16k = to_input_rate(speech, tts.rate)
    audio_s = len(pcm16k) / 2 / INPUT_RATE
    stt = LocalSTT()
    started = time.perf_counter()
    stt.load()
    figures["stt_load_s"] = time.perf_counter() - started  # includes importing faster-whisper
    figures["stt_threads"] = stt.cpu_threads
    text = stt.transcribe(pcm16k).text  # first call allocates buffers; not timed
    t, fastest, cpu = p50(lambda: stt.transcribe(pcm16k), runs)
    figures["stt_audio_s"] = audio_s
    figures["stt_p50_s"] = t
    figures["stt_min_s"] = fastest
    figures["stt_cpu_p50_s"] = cpu
    figures["stt_rtf_p50"] = t / audio_s
    figures["stt_text"] = text
    figures["rss_loaded_mb"] = round(rss_mb(), 1)

    # --- VAD and resampling (what runs per client chunk / per sentence) ---
    import numpy as np

    frames = np.frombuffer(pcm16k, "<i2").astype(np.float32) / 32768
    silero = frames[: len(frames) // 512 * 512].reshape(-1, 512)
    t, _, _ = p50(lambda: SileroDetector().classify(silero), runs)
    figures["vad_silero_ms_per_32ms_frame"] = t * 1000 / len(silero)
    energy = frames[: len(frames) // 480 * 480].reshape(-1, 480)
    t, _, _ = p50(lambda: EnergyDetector().classify(energy), runs)
    figures["vad_energy_ms_per_30ms_frame"] = t * 1000 / len(energy)
    t, _, _ = p50(lambda: to_input_rate(speech, tts.rate), runs)
    figures["resample_24k_to_16k_ms_per_s"] = t * 1000 / speech_s

    if args.json:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
        return
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:32s} {shown}")


if __name__ == "__main__":
    main()
