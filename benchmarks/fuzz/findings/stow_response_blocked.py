#!/usr/bin/env python3
"""Reproducer: a STOW-RS Store Instances Response is blocked on its way back.

Found by benchmarks/load/run.py (phase C, through Squid): every STOW-RS
upload answered 403 unparseable-dicom to the client, although the origin had
stored the de-identified objects. The store response (PS3.18 10.5.3) is
application/dicom+json, so Squid's example ACL sends it to RESPMOD; it is a
dataset with a Retrieve URL and a Referenced SOP Sequence but no SOP Class /
SOP Instance UID of its own, and ``deidentify_dataset`` (pipeline._process)
refuses any dataset without those two. QIDO-RS search results (study /
series level datasets) have the same shape and would be blocked too.

Expected: JSON datasets that are not composite instances (no SOP Class UID)
are de-identified by the same table (their Patient / Study attributes) and
passed, not blocked; instance UIDs inside them are mapped as everywhere else.
"""

from __future__ import annotations

import json
import sys

from _common import verdict

from icapdlp.adaptation.worker_tasks import rewrite_body
from icapdlp.verdict import Blocked
from tests.fuzz.targets import _body_policy


def main() -> int:
    response = {
        "00081190": {"vr": "UR", "Value": ["http://pacs.example/studies/1.2.3"]},
        "00081199": {"vr": "SQ", "Value": [{
            "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
            "00081155": {"vr": "UI", "Value": ["2.25.1234567890"]}}]},
    }
    body = json.dumps(response).encode()
    try:
        rewrite_body(_body_policy(), "deid-req", "response", "application/dicom+json", [], body, None)
    except Blocked as blocked:
        return verdict(True, f"STOW-RS store response blocked ({blocked.reason.value}: {blocked.detail})")
    return verdict(False, "STOW-RS store response passes")


if __name__ == "__main__":
    sys.exit(main())
