"""A factory module whose own import fails: must surface as an error, never as "missing"."""

import icapdlp.no_such_dependency  # noqa: F401

build_adapter = None
