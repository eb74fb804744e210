"""How HTTP payloads are searched for DICOM and rebuilt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class PayloadOptions:
    """Wrappings, archive limits and the bulk-data policy."""

    #: DICOMweb bulk data / frames parts carry no header to check: block or pass
    bulk_data: Literal["block", "allow"] = "block"
    #: DICOMDIR inside zip archives: regenerate is not offered; remove or keep-removed
    dicomdir: Literal["remove"] = "remove"
    max_archive_members: int = field(default=100_000, metadata={"min": 1})
    #: inflate ratio above which an archive member is treated as a bomb
    max_compression_ratio: int = field(default=200, metadata={"min": 2})
    max_inflated_bytes: int = field(default=4 * 1024**3, metadata={"min": 1024})
    max_multipart_parts: int = field(default=10_000, metadata={"min": 1})
    max_nesting: int = field(default=4, metadata={"min": 1, "max": 16})
    #: answer 206 + use-original-body for header-only rewrites of large objects
    use_206: bool = True
    #: RESPMOD: echo a large response's bytes as windows of it are cleared, holding back the rest
    #: (Squid 5.7 stalls responses above 64 KiB otherwise); false: every body is held whole
    release_responses: bool = True
    #: walk every long value of a request's target and header fields (of a response's header
    #: fields in RESPMOD) as text, and refuse one that holds an object (``uninspectable``): a
    #: small file fits in a query parameter or a header (about 0.1-0.5 ms per request with a
    #: cookie or a token; heads with short values cost nothing)
    check_heads: bool = True
    #: a body that is one piece of a larger one (a 206 answer, a Content-Range upload, a tus
    #: PATCH): "check" it alone like any body, or "block" every piece past the start. A check
    #: sees one message; a receiver that joins pieces may get an object no piece showed whole.
    #: "block" closes that and breaks resumable uploads and ranged downloads past their start
    partial_bodies: Literal["check", "block"] = "check"
