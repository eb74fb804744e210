from tests.support.processes import icapdlp_server  # noqa: F401  (the factory fixture)
