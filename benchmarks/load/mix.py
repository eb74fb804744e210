"""The request mix of the load benchmark: what is sent, and what must come back.

Classes (share of requests in the default mix):
- ``non-dicom``  (~78%) HTML, JSON, JPEG-like and octet-stream bodies, REQMOD and
  RESPMOD: must pass unchanged (ICAP 204).
- ``dicom``      (~12%) synthetic objects with planted PHI, raw / STOW-RS multipart
  / zip: must come back rewritten with no planted string left.
- ``burned-in``  (~3%)  secondary-capture images with burned-in PHI text (OCR + NER):
  must come back rewritten; no planted header value left.
- ``malformed``  (~7%)  truncated DICOM, a DICM magic over garbage, a zip that is
  not one, a multipart without its close delimiter: must be BLOCKED (fail
  closed); a pass-through would be an error.
Every body is generated here at start-up from the synthetic generators.
"""

from __future__ import annotations

import io
import os
import random
import zipfile
from dataclasses import dataclass, field

from tests.faults.icap_client import IcapReply, http_get, http_ok, http_post
from tests.support import burned_in, synthetic

WEIGHTS = {"non-dicom": 78, "dicom": 12, "burned-in": 3, "malformed": 7}
BOUNDARY = "loadBoundary42"


@dataclass
class Item:
    cls: str
    name: str
    method: str
    service: str
    http_head: bytes
    body: bytes
    res_head: bytes | None = None
    planted: list[str] = field(default_factory=list)
    content_type: str = ""
    zipped: bool = False


def _stow(objs: list[bytes]) -> bytes:
    out = b"".join(b"--" + BOUNDARY.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + o + b"\r\n"
                   for o in objs)
    return out + b"--" + BOUNDARY.encode() + b"--\r\n"


def _zip(objs: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, o in enumerate(objs):
            archive.writestr(f"study/{i}.dcm", o)
    return buf.getvalue()


def _req(cls, name, content_type, body, planted=(), zipped=False) -> Item:
    return Item(cls, name, "REQMOD", "deid-req", http_post(f"/raw/{name}", content_type, len(body)), body,
                planted=list(planted), content_type=content_type, zipped=zipped)


def _resp(cls, name, content_type, body) -> Item:
    return Item(cls, name, "RESPMOD", "deid-resp", http_get(f"/blob/{name}"), body,
                res_head=http_ok(content_type, len(body)), content_type=content_type)


def build_pools(seed: int = 0) -> dict[str, list[Item]]:
    rng = random.Random(seed)
    html = b"<html><body>" + b"<p>lorem ipsum dolor sit amet</p>" * 300 + b"</body></html>"
    pools: dict[str, list[Item]] = {"non-dicom": [], "dicom": [], "burned-in": [], "malformed": []}
    nd = pools["non-dicom"]
    nd += [_req("non-dicom", f"page{i}", "text/html", html[: 2000 + 3000 * i]) for i in range(4)]
    nd += [_req("non-dicom", "api", "application/json", b'{"k": "v", "n": [1, 2, 3]}' * 40)]
    nd += [_req("non-dicom", f"photo{i}", "image/jpeg", b"\xff\xd8\xff\xe0" + rng.randbytes(50_000))
           for i in range(2)]
    nd += [_req("non-dicom", "blob", "application/octet-stream", rng.randbytes(200_000))]
    nd += [_resp("non-dicom", f"r{i}", "text/html", html[: 1000 + 5000 * i]) for i in range(3)]
    nd += [_resp("non-dicom", "rbin", "application/octet-stream", rng.randbytes(100_000))]

    objs = [synthetic.make_ct(100 + i, rows=64, columns=64) for i in range(6)]
    dc = pools["dicom"]
    dc += [_req("dicom", f"ct{i}", "application/dicom", o.data, o.phi_strings)
           for i, o in enumerate(objs[:4])]
    dc += [_req("dicom", "stow", f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
                _stow([objs[4].data, objs[5].data]), objs[4].phi_strings + objs[5].phi_strings)]
    dc += [_req("dicom", "zip", "application/zip", _zip([objs[0].data, objs[5].data]),
                objs[0].phi_strings + objs[5].phi_strings, zipped=True)]

    for i in range(3):
        case = burned_in.make_case(200 + i)
        header_values = [case.header[k] for k in (
            "PatientName", "PatientID", "AccessionNumber", "InstitutionName", "ReferringPhysicianName",
            "PatientBirthDate")]
        pools["burned-in"].append(_req("burned-in", f"sc{i}", "application/dicom",
                                       burned_in.to_bytes(case.dataset), header_values))

    good = objs[1].data
    ml = pools["malformed"]
    ml += [_req("malformed", "truncated", "application/dicom", good[: len(good) // 2])]
    ml += [_req("malformed", "garbage", "application/dicom", bytes(128) + b"DICM" + rng.randbytes(6000))]
    ml += [_req("malformed", "notzip", "application/zip", b"PK\x03\x04" + rng.randbytes(3000))]
    stow_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    ml += [_req("malformed", "openpart", stow_type, _stow([good])[:-(len(BOUNDARY) + 8)])]
    return pools


def pick(rng: random.Random, pools: dict[str, list[Item]], weights: dict[str, int] = WEIGHTS) -> Item:
    cls = rng.choices(list(weights), weights=list(weights.values()))[0]
    return rng.choice(pools[cls])


def judge(item: Item, reply: IcapReply) -> str | None:
    """None when the reply is what this class must get; else a short PHI-free error label."""
    if item.cls == "non-dicom":
        return None if reply.status == 204 else f"non-dicom answered {reply.status}/{reply.block_reason}"
    if item.cls == "malformed":
        return None if reply.block_reason else f"malformed not blocked ({reply.status})"
    if reply.status != 200 or reply.block_reason:
        return f"{item.cls} answered {reply.status}/{reply.block_reason}"
    body = reply.body
    if item.zipped:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            body = b"".join(archive.read(n) for n in archive.namelist())
    if any(p.encode() in body for p in item.planted):
        return f"{item.cls}: planted PHI survived"
    return None


def rss_kb_tree(pid: int) -> int:
    """RSS of the server and its worker processes (what the machine pays for it)."""
    from tests.faults.serverctl import children, rss_kb

    total = rss_kb(pid)
    for child in children(pid):
        try:
            total += rss_kb(child)
        except FileNotFoundError:
            continue
    return total


def cpu_count() -> int:
    return os.cpu_count() or 1
