"""ICAP/1.0 (RFC 3507 + errata), sans-IO: bytes in, events out; responses in, bytes out."""
