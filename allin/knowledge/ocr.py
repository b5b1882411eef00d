"""Text from pixels with RapidOCR (PP-OCR models on onnxruntime, shipped in the wheel).

The engine loads on first use (1–2 s) and is shared by threads behind a lock:
a recognition run already uses several cores, so running two at once only
makes both slower. Lines come back in reading order (top to bottom, then
left to right) and are joined into paragraphs by their geometry.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

MAX_SIDE = 2000  # the engine scales larger images down to this anyway


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float
    left: float
    top: float
    right: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom - self.top


class Ocr:
    """Lazy, thread-safe wrapper around `rapidocr.RapidOCR`."""

    def __init__(self, *, threads: int = 2, min_score: float = 0.5, use_angle_cls: bool = True) -> None:
        self.threads = threads
        self.min_score = min_score
        self.use_angle_cls = use_angle_cls
        self._engine = None
        self._lock = threading.Lock()

    def _load(self):
        from rapidocr import RapidOCR  # heavy import (opencv, onnxruntime): only when used

        return RapidOCR(
            params={
                "Global.log_level": "warning",
                "Global.text_score": self.min_score,
                "Global.use_cls": self.use_angle_cls,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )

    def read_lines(self, image: Image.Image | np.ndarray | Path) -> list[OcrLine]:
        """Recognised lines in reading order."""
        array = _as_rgb_array(image)
        with self._lock:
            if self._engine is None:
                self._engine = self._load()
            result = self._engine(array)
        if result is None or result.txts is None or result.boxes is None:
            return []
        lines = []
        for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            text = text.strip()
            if not text or score < self.min_score:
                continue
            xs, ys = box[:, 0], box[:, 1]
            lines.append(
                OcrLine(
                    text, float(score), float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())
                )
            )
        return _reading_order(lines)

    def read(self, image: Image.Image | np.ndarray | Path) -> list[str]:
        """Paragraphs of text in reading order (empty when nothing was recognised)."""
        return paragraphs(self.read_lines(image))


def paragraphs(lines: list[OcrLine]) -> list[str]:
    """Join lines into paragraphs: a paragraph ends at a wide vertical gap or an indent jump."""
    out: list[str] = []
    current: list[str] = []
    prev: OcrLine | None = None
    for line in lines:
        if prev is not None and current:
            gap = line.top - prev.bottom
            same_line = line.top < prev.bottom - 0.5 * prev.height
            new_para = not same_line and (
                gap > 0.8 * max(prev.height, line.height)
                or abs(line.left - prev.left) > 2.5 * prev.height
                or _is_bullet(line.text)
            )
            if new_para:
                out.append(_join(current))
                current = []
        current.append(line.text)
        prev = line
    if current:
        out.append(_join(current))
    return [p for p in out if p]


def _join(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if text.endswith("-") and part[:1].islower():
            text = text + part  # a word hyphenated across lines keeps its hyphen
        else:
            text = f"{text} {part}" if text else part
    return text


def _is_bullet(text: str) -> bool:
    return text[:1] in "•·-*▪◦" and len(text) > 1


def _reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Rows by vertical overlap, each row left to right."""
    lines = sorted(lines, key=lambda ln: (ln.top, ln.left))
    rows: list[list[OcrLine]] = []
    for line in lines:
        if rows:
            anchor = rows[-1][0]
            centre = (line.top + line.bottom) / 2
            if anchor.top <= centre <= anchor.bottom:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [ln for row in rows for ln in sorted(row, key=lambda ln: ln.left)]


def _as_rgb_array(image: Image.Image | np.ndarray | Path) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, Path):
        with Image.open(image) as im:
            return _as_rgb_array(im.copy())
    if image.mode != "RGB":
        image = (
            _flatten_alpha(image) if "A" in image.getbands() or image.mode == "P" else image.convert("RGB")
        )
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    # RapidOCR takes OpenCV's channel order for arrays.
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Transparent pixels become white (black-on-transparent text stays readable)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")
