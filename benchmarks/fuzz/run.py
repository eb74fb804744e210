#!/usr/bin/env python3
"""Long fuzz campaign over every target of tests/fuzz, for a fixed time.

    .venv/bin/python benchmarks/fuzz/run.py --minutes 30            # all targets
    .venv/bin/python benchmarks/fuzz/run.py --minutes 5 --targets pipeline,payload

Same targets, seeds, mutations and invariants as the CI tests (tests/fuzz/),
but random (``--seed``), unbounded in count and with one more oracle the CI
budget cannot afford to assert: for DICOM that comes out of the pipeline or
the worker task, no planted PHI string of any seed may survive ("phi-survived").

Findings are de-duplicated by signature (outcome, exception type, innermost
frames) and written to ``benchmarks/results/fuzz/findings.json`` with the
(seed index, ops) that reproduce each one: mutations are deterministic, so no
mutated binary is ever stored. ``--replay FILE`` re-runs stored findings.
Three shapes of surviving planted string that no header rule could remove (a plain form
field passed byte-identical by design; a value whose tag a mutation turned into another,
kept, descriptive attribute; pixel bytes while the fuzzing profile does not clean pixels)
are counted in their own columns, not as findings; ``oracle.py`` says exactly which.
Exit code 1 when there is a finding, 0 otherwise. A Markdown summary goes to
stdout (and ``summary.md``) for benchmarks/report.

Hypothesis drives the CI budget; this loop uses plain random mutation, so it
needs nothing outside the pinned virtualenv (atheris is not in it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.fuzz import oracle  # noqa: E402
from icapdlp.verdict import Blocked  # noqa: E402
from tests.fuzz import mutations, seeds  # noqa: E402
from tests.fuzz.harness import peak_bound, run_case  # noqa: E402
from tests.fuzz.targets import TARGETS, payload_body  # noqa: E402
from tests.fuzz import wrappings  # noqa: E402

#: the adversarial wrappings target (tests/fuzz/wrappings.py): generated, not mutated
WRAPPINGS = "wrappings"

#: a long run can afford a slower machine than CI: double the CI per-case deadline
CASE_SECONDS = 10.0
#: how often a codec/heads case is arbitrary bytes instead of a mutated seed
RANDOM_BYTES_SHARE = 0.15
#: RSS of the fuzzing process may grow at most this much over a campaign (leak check): the
#: first minutes load pydicom and zipfile state (~10 MB); a per-case leak of 1 KiB over
#: 100k cases already exceeds it
RSS_GROWTH_BOUND_MB = 64
RESULTS = REPO / "benchmarks" / "results" / "fuzz"
#: how a case may end without being a finding (see benchmarks/fuzz/oracle.py for the last three)
NOT_FINDINGS = ("refused", "plain-form-field", "relabelled", "pixel-data")
FINDINGS = ("crash", "timeout", "memory", "warning", "phi-survived")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def planted_strings() -> list[bytes]:
    return sorted({p.encode() for values in seeds.dicom_planted().values() for p in values})


class Campaign:
    def __init__(self, names: list[str], rng: random.Random) -> None:
        self.names = names
        self.rng = rng
        self.seeds = {name: (TARGETS[name].seeds() if name in TARGETS else
                             [p[3] for p in seeds.payload_seeds()] if name == "payload" else [b""])
                      for name in names}
        self.planted = planted_strings()
        self.cases: Counter[str] = Counter()
        self.kinds: dict[str, Counter[str]] = {name: Counter() for name in names}
        self.findings: dict[str, dict] = {}
        #: cases set apart by the oracle (not findings), kept with their ops so they can be replayed
        self.accepted: dict[str, dict] = {}

    def case(self, name: str, index: int, ops: list[tuple], raw: bytes | None = None) -> str:
        """Run one case, count how it ended and keep it if it is a finding; return its kind."""
        pool = self.seeds[name]
        data = raw if raw is not None else mutations.apply(pool[index], ops, pool)
        holder: dict[str, object] = {}
        if name == "payload":
            _, content_type, codings, _ = seeds.payload_seeds()[index]

            def call():
                holder["out"] = payload_body(content_type, codings, data)
            allowed, entry = (Blocked,), True
        else:
            target = TARGETS[name]

            def call():
                holder["out"] = target.run(data)
            allowed, entry = target.allowed, target.entry_point
        outcome = run_case(call, allowed, seconds=CASE_SECONDS, max_peak_bytes=peak_bound(len(data)),
                           forbid_warnings=entry)
        kind, signature = outcome.kind, outcome.signature()
        if kind == "ok" and name in ("pipeline", "payload"):
            out = holder.get("out")
            body = out if isinstance(out, bytes) else getattr(out, "data", None)
            survived = [p for p in self.planted if body and p in body]
            if survived:
                kind = oracle.classify(name, index, data, body, survived)
                signature = f"{kind}:{name}:{len(survived)} planted strings"
        self.cases[name] += 1
        self.kinds[name][kind] += 1
        kept = self.findings if kind in FINDINGS else self.accepted if kind in NOT_FINDINGS[1:] else None
        if kept is not None:
            found = kept.setdefault(signature, {
                "target": name, "kind": kind, "signature": signature, "count": 0,
                "seed_index": index, "ops": [list(map(_jsonable, op)) for op in ops],
                "raw_hex": raw.hex() if raw is not None else None,
                "trace_tail": outcome.trace[-1500:], "input_bytes": len(data)})
            found["count"] += 1
        return kind

    def wrapping_case(self, case_seed: int) -> str:
        """One generated wrapping case: blocked or clean, else a finding (phi-survived, crash...)."""
        case = wrappings.generate(random.Random(case_seed))
        holder: dict[str, object] = {}

        def call():
            holder["kind"], holder["left"] = wrappings.outcome(case)
        outcome = run_case(call, (), seconds=CASE_SECONDS, max_peak_bytes=peak_bound(len(case.body)) * 4,
                           forbid_warnings=False)
        kind, signature = outcome.kind, outcome.signature()
        if kind == "ok":
            verdict = str(holder.get("kind", "ok"))
            kind = "phi-survived" if verdict == "phi-survived" else "refused" if verdict.startswith("blocked") \
                else "ok"
            signature = f"phi-survived:{case.shape}" if kind == "phi-survived" else signature
        self.cases[WRAPPINGS] += 1
        self.kinds[WRAPPINGS][kind] += 1
        if kind in FINDINGS:
            found = self.findings.setdefault(signature, {
                "target": WRAPPINGS, "kind": kind, "signature": signature, "count": 0, "seed_index": case_seed,
                "ops": [], "raw_hex": None, "trace_tail": outcome.trace[-1500:], "input_bytes": len(case.body)})
            found["count"] += 1
        return kind

    def one(self) -> None:
        name = self.rng.choice(self.names)
        if name == WRAPPINGS:
            self.wrapping_case(self.rng.randrange(2**32))
            return
        pool = self.seeds[name]
        index = self.rng.randrange(len(pool))
        if name in ("icap-codec", "http-heads") and self.rng.random() < RANDOM_BYTES_SHARE:
            raw = self.rng.randbytes(self.rng.randrange(1, 2048))
            self.case(name, index, [], raw)
            return
        self.case(name, index, mutations.random_ops(self.rng, len(pool[index])))


def _jsonable(value):
    return {"hex": value.hex()} if isinstance(value, bytes) else value


def _op_from_json(op: list) -> tuple:
    return tuple(bytes.fromhex(v["hex"]) if isinstance(v, dict) else v for v in op)


def summary(campaign: Campaign, minutes: float, elapsed: float, rss: tuple[float, float], seed: int) -> str:
    lines = [f"Fuzz campaign: {sum(campaign.cases.values())} cases in {elapsed / 60:.1f} min "
             f"(asked {minutes} min), seed {seed}; RSS {rss[0]:.0f} -> {rss[1]:.0f} MB "
             f"(bound +{RSS_GROWTH_BOUND_MB} MB)", "",
             "| target | cases | ok | refused | plain form field | relabelled | pixel data | findings |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in campaign.names:
        k = campaign.kinds[name]
        bad = sum(v for key, v in k.items() if key not in ("ok", *NOT_FINDINGS))
        lines.append(f"| {name} | {campaign.cases[name]} | {k['ok']} | {k['refused']} | "
                     f"{k['plain-form-field']} | {k['relabelled']} | {k['pixel-data']} | {bad} |")
    lines.append("")
    if campaign.findings:
        lines.append("| finding | target | times |")
        lines.append("|---|---|---:|")
        for f in campaign.findings.values():
            lines.append(f"| `{f['signature']}` | {f['target']} | {f['count']} |")
    else:
        lines.append("No findings.")
    if campaign.accepted:
        lines += ["", "Set apart by the oracle (not findings; benchmarks/fuzz/oracle.py): "
                  + ", ".join(f"`{a['signature']}` x{a['count']}" for a in campaign.accepted.values())]
    return "\n".join(lines) + "\n"


def replay(path: Path) -> int:
    stored = json.loads(path.read_text())
    campaign = Campaign(sorted({f["target"] for f in stored}), random.Random(0))
    for f in stored:
        if f["target"] == WRAPPINGS:
            kind = campaign.wrapping_case(f["seed_index"])
            print(f["signature"], "->", "reproduced" if f["signature"] in campaign.findings else f"NOT ({kind})")
            continue
        raw = bytes.fromhex(f["raw_hex"]) if f.get("raw_hex") else None
        kind = campaign.case(f["target"], f["seed_index"], [_op_from_json(op) for op in f["ops"]], raw)
        again = f["signature"] in campaign.findings or f["signature"] in campaign.accepted
        print(f["signature"], "->", "reproduced" if again else f"NOT reproduced (now {kind})")
    return 1 if campaign.findings else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--max-cases", type=int, default=0, help="stop after this many cases (0: no cap)")
    parser.add_argument("--targets", default=",".join([*TARGETS, "payload", WRAPPINGS]))
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--replay", type=Path)
    args = parser.parse_args(argv)
    if args.replay:
        return replay(args.replay)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS and n not in ("payload", WRAPPINGS)]
    if unknown:
        parser.error(f"unknown targets: {unknown}; known: {[*TARGETS, 'payload', WRAPPINGS]}")
    import tracemalloc
    import warnings
    warnings.simplefilter("ignore")  # outside cases; each case records its own warnings
    # trace for the whole campaign: starting and stopping tracemalloc per case costs
    # about 0.5 KiB of RSS each time, which would hide (or fake) a real leak
    tracemalloc.start()
    rng = random.Random(args.seed)
    campaign = Campaign(names, rng)
    rss_start = rss_mb()
    started = time.monotonic()
    deadline = started + args.minutes * 60
    last_note = started
    def more() -> bool:
        return not args.max_cases or sum(campaign.cases.values()) < args.max_cases
    while time.monotonic() < deadline and more():
        campaign.one()
        if time.monotonic() - last_note > 60:
            last_note = time.monotonic()
            print(f"  {sum(campaign.cases.values())} cases, {len(campaign.findings)} findings, "
                  f"RSS {rss_mb():.0f} MB", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started
    rss_end = rss_mb()
    text = summary(campaign, args.minutes, elapsed, (rss_start, rss_end), args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "findings.json").write_text(json.dumps(list(campaign.findings.values()), indent=1))
    (args.out / "accepted.json").write_text(json.dumps(list(campaign.accepted.values()), indent=1))
    (args.out / "summary.md").write_text(text)
    print(text)
    rss_ok = rss_end - rss_start <= RSS_GROWTH_BOUND_MB
    if not rss_ok:
        print(f"RSS grew {rss_end - rss_start:.0f} MB, above the {RSS_GROWTH_BOUND_MB} MB bound")
    return 0 if not campaign.findings and rss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
