"""HTTP payloads <-> DICOM objects: raw, multipart, DICOMweb, JSON, zip, tar, compressed, text-encoded.

Modules, from the cheapest look to the deepest:

- ``media``: Content-Type / Content-Encoding parsing.
- ``sniff``: is a byte string DICOM (Part-10 magic, or a bare dataset by structure)?
- ``triage``: the preview decision - pass, read the body, raw DICOM, or refuse.
- ``walker``: finds every object in a whole body and rebuilds the body around
  the rewritten objects, using ``multipart``, ``dicomjson``, ``archive`` (zip),
  ``tarball``, ``encoding`` (compression, one table of supported codings),
  ``transfer`` (Content-Transfer-Encoding, hex bodies) and ``textruns`` (base64
  in text and JSON) for the wrappings.

Nothing here knows ICAP or how an object is de-identified: the walker is given
an ``ObjectRewriter``. Every failure is a ``Blocked`` with a closed-set reason.
"""
