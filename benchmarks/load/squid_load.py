"""The same mix through a real Squid 5.7 (the shipped upload-download example) to a
recording origin; afterwards every DICOM the origin received is checked for planted PHI.

As in production, the example sends every request with a body and every
response through icapdlp (it fails closed: the declared type decides
nothing), so non-DICOM traffic costs a preview and an ICAP 204 here too.
Clients are threads using http.client through the proxy.
"""

from __future__ import annotations

import http.client
import io
import random
import threading
import time
import uuid
import zipfile
from collections import defaultdict

from benchmarks.load.icap_load import PhaseStats
from benchmarks.load.mix import Item, pick
from tests.support.origin import OriginServer
from tests.support.squid import start_squid_from_example

REQUEST_TIMEOUT = 120.0


def _send(proxy_port: int, method: str, url: str, body: bytes | None, content_type: str | None):
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=REQUEST_TIMEOUT)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request(method, url, body=body, headers=headers)
        reply = conn.getresponse()
        return reply.status, dict((k.lower(), v) for k, v in reply.getheaders()), reply.read()
    finally:
        conn.close()


def _client(proxy_port: int, origin: OriginServer, pools, weights, stop_at: float, rng: random.Random,
            stats: PhaseStats, sent: list, lock: threading.Lock) -> None:
    while time.monotonic() < stop_at:
        item: Item = pick(rng, pools, weights)
        tag = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        try:
            if item.method == "RESPMOD":
                path = origin.add_blob(f"{item.name}-{tag}", item.body, item.content_type)
                status, _, body = _send(proxy_port, "GET", origin.url(path), None, None)
                ok = status == 200 and body == item.body
                problem = None if ok else f"download {item.name} -> {status}"
            else:
                path = "/studies" if item.name == "stow" else f"/raw/{item.name}-{tag}"
                status, headers, _ = _send(proxy_port, "POST", origin.url(path), item.body, item.content_type)
                reason = headers.get("x-icapdlp-reason")
                if item.cls == "malformed":
                    problem = None if status == 403 and reason else f"malformed not blocked ({status})"
                else:
                    problem = None if status == 200 else f"{item.cls} {item.name} upload -> {status} {reason}"
                with lock:
                    sent.append((item, path, status))
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{item.cls}: {type(exc).__name__}"
        elapsed = time.perf_counter() - started
        with lock:
            if problem:
                stats.errors[item.cls] += 1
                stats.error_kinds[problem] += 1
            else:
                stats.latencies[item.cls].append(elapsed)


def verify_origin(origin: OriginServer, sent: list) -> dict[str, int]:
    """Every DICOM the origin received is free of planted PHI; no malformed one arrived."""
    received = origin.received()
    by_path = defaultdict(list)
    for r in received:
        by_path[r.path].append(r)
    planted = sorted({p for item, _, _ in sent for p in item.planted})
    counts = {"dicom_checked": 0, "dicom_with_phi": 0, "malformed_arrived": 0}
    for r in received:
        if not (r.path.startswith("/raw/") or r.path == "/studies"):
            continue
        name = r.path.rsplit("/", 1)[-1].rsplit("-", 1)[0]
        if name in ("truncated", "garbage", "notzip", "openpart"):
            counts["malformed_arrived"] += 1
            continue
        if r.path == "/studies" or name.startswith(("ct", "sc", "zip")):
            body = r.body
            if name == "zip":
                with zipfile.ZipFile(io.BytesIO(body)) as archive:
                    body = b"".join(archive.read(n) for n in archive.namelist())
            counts["dicom_checked"] += 1
            if any(p.encode() in body for p in planted):
                counts["dicom_with_phi"] += 1
    return counts


def run_squid_phase(icap_port: int, pools, weights, seconds: float, clients: int, seed: int):
    origin = OriginServer().start()
    proxy = start_squid_from_example("upload-download.conf", icap_port=icap_port)
    stats, sent, lock = PhaseStats(), [], threading.Lock()
    try:
        stop_at = time.monotonic() + seconds
        started = time.monotonic()
        threads = [threading.Thread(target=_client, args=(proxy.port, origin, pools, weights, stop_at,
                                                          random.Random(seed * 77 + i), stats, sent, lock))
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats.seconds = time.monotonic() - started
        time.sleep(0.5)  # the origin records after answering
        return stats, verify_origin(origin, sent)
    finally:
        proxy.cleanup()
        origin.stop()
