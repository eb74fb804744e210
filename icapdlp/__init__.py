"""icapdlp: an ICAP server that de-identifies DICOM objects crossing an HTTP proxy.

The package is layered so that each layer can be tested and reused alone, and
imports only the layers below it (highest first; the order and its check are in
``tests/architecture/test_layers.py``):

- ``icapdlp.cli``       the ``icapdlp`` command.
- ``icapdlp.app``       wiring: settings, key, workers, adapter, observer, server; signals, reload.
- ``icapdlp.server``    asyncio sockets, TLS, worker processes.
- ``icapdlp.adaptation`` the hook the server calls; joins ICAP to payloads.
- ``icapdlp.config``    one frozen settings object, read once, passed down.
- ``icapdlp.pixels``    burned-in text detection and redaction;
  ``icapdlp.observability`` metrics, health, audit log.
- ``icapdlp.icap``      ICAP/1.0 protocol, sans-IO (bytes <-> events);
  ``icapdlp.payload``   HTTP messages <-> DICOM objects (multipart, zip, gzip, JSON);
  ``icapdlp.dicom``     the pure de-identification + clean-rebuild pipeline.
- ground floor: ``verdict``, ``report``, ``http``, ``transaction``, ``errors`` and this module.
"""

__version__ = "0.1.0"
PRODUCT = "icapdlp"
