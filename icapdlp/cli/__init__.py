"""Command-line entry points. Each sub-command is one module with ``add_parser`` and ``run``."""
