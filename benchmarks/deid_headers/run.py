#!/usr/bin/env python3
"""Header de-identification speed: icapdlp vs dicognito, pydicom/deid, KitwareMedical dicom-anonymizer.

Run from the repository root with the project venv:

    .venv/bin/python benchmarks/deid_headers/run.py [--ct 40 --multiframe 4 --sequences 10]

It creates ``benchmarks/.venv-deid/`` (git-ignored) with the three peers from
PyPI, generates a synthetic set (single-frame CT 512x512, multi-frame
512x512, objects with a 2000-item sequence) under ``benchmarks/results/``,
then runs each tool file-to-file in its own single process, one tool after
the other, and prints files/s and peak RSS per tool and per kind of file.
icapdlp runs with Clean Pixel Data off (this is a header benchmark) but with
its full CDR: pre-scan, value checks, rebuild, high-bit zeroing. It reads each
file into its own buffer and writes the rebuilt pieces to the output file
(``deidentify_bytes`` + ``write_to``), as the server's worker does with a
spooled body; the peers read with pydicom and write with ``save_as``.

Target (issue #3): icapdlp faster per file than each peer on every set; a
verdict line per set compares icapdlp's median ms/file with each peer's. The
tools run ``--rounds`` times, interleaved, because the machine is shared:
one tool's run should not be the one that met a busy minute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEER_VENV = ROOT / "benchmarks" / ".venv-deid"
DATA = ROOT / "benchmarks" / "results" / "deid_headers"
PEERS = ("dicognito", "deid", "dicom-anonymizer")
TOOLS = ("icapdlp",) + PEERS

#: runs inside a tool's interpreter: anonymise every file of a kind, report time and peak RSS
RUNNER = r"""
import json, resource, sys, time, warnings, logging
from pathlib import Path
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
tool, src, dst = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
files = sorted(src.glob("*.dcm"))
dst.mkdir(parents=True, exist_ok=True)
if tool == "icapdlp":
    from icapdlp.dicom.options import DicomLimits, ProfileOptions
    from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
    cfg = PipelineConfig(ProfileOptions(clean_pixel_data=False), DicomLimits(), bytes(range(32)))
    def one(path, out):  # as the server's worker does with a spooled body: read once, write the pieces
        data = bytearray(path.stat().st_size)
        with open(path, "rb") as handle:
            handle.readinto(data)
        result = deidentify_bytes(data, cfg, owned=True)
        with open(out, "wb") as handle:
            result.write_to(handle)
elif tool == "dicognito":
    import pydicom
    from dicognito.anonymizer import Anonymizer
    anonymizer = Anonymizer()
    def one(path, out):
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(out)
elif tool == "deid":
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers
    recipe = DeidRecipe()
    def one(path, out):
        replace_identifiers(dicom_files=[str(path)], deid=recipe, save=True,
                            output_folder=str(out.parent), overwrite=True)
elif tool == "dicom-anonymizer":
    from dicomanonymizer import anonymize_dicom_file
    def one(path, out):
        anonymize_dicom_file(str(path), str(out))
errors = 0
start = time.perf_counter()
for path in files:
    try:
        one(path, dst / path.name)
    except Exception:
        errors += 1
elapsed = time.perf_counter() - start
peak_kib = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
print(json.dumps({"files": len(files), "seconds": elapsed, "errors": errors, "peak_mib": peak_kib / 1024}))
"""


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        venv.create(PEER_VENV, with_pip=True)
    probe = subprocess.run([str(python), "-c", "import dicognito, deid, dicomanonymizer"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEERS], check=True)
    return python


def generate(ct: int, multiframe: int, sequences: int) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT))
    from tests.support.synthetic import make_ct, make_large_sequences, make_multiframe

    kinds = {
        "ct-512": [make_ct(i, rows=512, columns=512, signatures=False) for i in range(ct)],
        "multiframe-512x20": [make_multiframe(100 + i, frames=20, rows=512, columns=512, signatures=False)
                              for i in range(multiframe)],
        "sequence-2000": [make_large_sequences(200 + i, items=2000, signatures=False) for i in range(sequences)],
    }
    folders = {}
    for kind, objects in kinds.items():
        folder = DATA / "input" / kind
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.dcm"):
            old.unlink()
        for index, obj in enumerate(objects):
            (folder / f"{index:04d}.dcm").write_bytes(obj.data)
        folders[kind] = folder
    return folders


def measure(python: Path, tool: str, folder: Path, kind: str) -> dict:
    out = DATA / "output" / tool / kind
    proc = subprocess.run([str(python), "-c", RUNNER, tool, str(folder), str(out)], capture_output=True,
                          text=True, cwd=ROOT, timeout=1800)
    if proc.returncode != 0:
        return {"files": 0, "seconds": 0.0, "errors": -1, "peak_mib": 0.0}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", type=int, default=40)
    parser.add_argument("--multiframe", type=int, default=4)
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of every tool per set, interleaved; the median is compared")
    args = parser.parse_args()
    peer_python = ensure_peer_venv()
    folders = generate(args.ct, args.multiframe, args.sequences)
    header = (f"{'set':<20}{'tool':<18}{'files':>6}{'errors':>8}{'files/s':>10}{'ms/file':>10}"
              f"{'min-max':>14}{'peak MiB':>10}")
    print(f"median of {args.rounds} interleaved rounds per tool and set")
    print(header)
    print("-" * len(header))
    verdicts = []
    for kind, folder in folders.items():
        runs: dict[str, list[dict]] = {tool: [] for tool in TOOLS}
        for _ in range(args.rounds):  # interleaved, so a noisy minute hits every tool alike
            for tool in TOOLS:
                python = Path(sys.executable) if tool == "icapdlp" else peer_python
                runs[tool].append(measure(python, tool, folder, kind))
        per_tool = {}
        for tool in TOOLS:
            rs = runs[tool]
            failed = any(r["errors"] < 0 for r in rs)
            errors = "FAIL" if failed else str(max(r["errors"] for r in rs))
            pers = sorted(1000 * r["seconds"] / r["files"] for r in rs if r["files"])
            per = statistics.median(pers) if pers else 0.0
            rate = 1000 / per if per else 0.0
            spread = f"{pers[0]:.1f}-{pers[-1]:.1f}" if pers else "-"
            peak = max(r["peak_mib"] for r in rs)
            print(f"{kind:<20}{tool:<18}{rs[0]['files']:>6}{errors:>8}{rate:>10.1f}{per:>10.1f}{spread:>14}"
                  f"{peak:>10.1f}")
            clean = not failed and all(r["errors"] == 0 for r in rs) and pers
            per_tool[tool] = per if clean else None
        verdicts.append(_verdict(kind, per_tool))
    print()
    print("\n".join(verdicts))
    return 0


def _verdict(kind: str, per_tool: dict[str, float | None]) -> str:
    """Whether icapdlp is faster per file than each peer that ran this set without errors."""
    ours = per_tool.get("icapdlp")
    peers = {t: v for t, v in per_tool.items() if t != "icapdlp" and v}
    if not ours or not peers:
        return f"target {kind}: not measured (a tool failed)"
    ratios = ", ".join(f"{t} {v / ours:.2f}x" for t, v in peers.items())
    met = all(ours < v for v in peers.values())
    return f"target {kind}: peer ms/file / icapdlp ms/file = {ratios}: {'MET' if met else 'MISSED'}"


if __name__ == "__main__":
    sys.exit(main())
