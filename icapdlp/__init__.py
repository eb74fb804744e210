"""icapdlp: an ICAP server that de-identifies DICOM objects crossing an HTTP proxy.

The package is layered so that each layer can be tested and reused alone:

- ``icapdlp.icap``      ICAP/1.0 protocol, sans-IO (bytes <-> events).
- ``icapdlp.server``    asyncio sockets, TLS, worker processes, lifecycle.
- ``icapdlp.adaptation`` the hook the server calls; joins ICAP to payloads.
- ``icapdlp.payload``   HTTP messages <-> DICOM objects (multipart, zip, gzip, JSON).
- ``icapdlp.dicom``     the pure de-identification + clean-rebuild pipeline.
- ``icapdlp.pixels``    burned-in text detection and redaction.
- ``icapdlp.observability`` metrics, health, audit log.
- ``icapdlp.config``    one frozen settings object, read once, passed down.
"""

__version__ = "0.1.0"
PRODUCT = "icapdlp"
