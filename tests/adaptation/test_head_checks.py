"""The adapter refuses what the heads alone carry (issue 12, red team F16 and F11).

``payload.heads`` finds an object in a head value and tells a body that is a
piece of a larger one; these tests are about the adapter asking it once per
message, bodiless GETs included, and about the options that turn it off.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses

from icapdlp.adaptation.api import Block, NoChange
from icapdlp.config.schema import ServiceOptions
from icapdlp.http import HttpHeaders, HttpRequestHead
from icapdlp.payload.options import PayloadOptions
from icapdlp.transaction import Transaction
from icapdlp.verdict import BlockReason
from tests.adaptation.helpers import make_adapter, make_settings, request_tx, response_tx
from tests.payload.test_heads import small_part10


def get_tx(target: str, headers: list[tuple[str, str]] = (), service: str = "deid-req") -> Transaction:
    head = HttpRequestHead("GET", target, "HTTP/1.1", HttpHeaders([("Host", "portal.example"), *headers]))
    return Transaction("tx-head", service, "REQMOD", head, None, False, True, False, 0)


def preview(tx: Transaction, adapter=None, body: bytes = b""):
    return asyncio.run((adapter or make_adapter()).on_preview(tx, body, not tx.has_body))


ENCODED = base64.urlsafe_b64encode(small_part10()).decode()


def test_an_object_in_a_bodiless_get_query_is_refused():
    decision = preview(get_tx(f"/api/upload?file={ENCODED}&x=1"))
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNINSPECTABLE


def test_an_object_in_a_request_header_is_refused():
    decision = preview(request_tx("text/plain", 5, extra=[("X-Attachment", ENCODED)]), body=b"hello")
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNINSPECTABLE


def test_an_object_in_a_response_header_is_refused():
    decision = preview(response_tx("text/plain", 5, extra=[("X-Report", ENCODED)]), body=b"hello")
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNINSPECTABLE


def test_an_ordinary_browser_head_passes():
    token = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode() + "." + \
        base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"A User","iat":1516239022}').decode() + ".c2lnbmF0dXJl"
    decision = preview(get_tx("/viewer/index.html?study=1.2.3.4&lang=en", [
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari"),
        ("Cookie", "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark"), ("Authorization", f"Bearer {token}")]))
    assert isinstance(decision, NoChange)


def test_head_checks_can_be_turned_off_and_a_passing_service_is_not_refused():
    off = make_adapter(make_settings(payload=PayloadOptions(check_heads=False)))
    assert isinstance(preview(get_tx(f"/api/upload?file={ENCODED}"), off), NoChange)
    settings = make_settings()
    passing = dataclasses.replace(settings, services={
        **settings.services, "lenient-req": ServiceOptions(method="REQMOD", uninspectable="pass")})
    assert isinstance(preview(get_tx(f"/api/upload?file={ENCODED}", service="lenient-req"),
                              make_adapter(passing)), NoChange)


def test_pieces_past_the_start_are_refused_only_when_the_policy_says_so():
    """tus appends each PATCH at Upload-Offset: a stateless check sees one piece at a time."""
    later = request_tx("application/offset+octet-stream", 5, extra=[("Upload-Offset", "1024"),
                                                                    ("Tus-Resumable", "1.0.0")])
    first = request_tx("application/offset+octet-stream", 5, extra=[("Upload-Offset", "0")])
    blocking = make_adapter(make_settings(payload=PayloadOptions(partial_bodies="block")))
    decision = preview(later, blocking, b"plain")
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNINSPECTABLE
    assert not isinstance(preview(first, blocking, b"plain"), Block)
    assert not isinstance(preview(later, body=b"plain"), Block)  # the default checks each piece alone
