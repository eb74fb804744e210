"""Error types more than one layer raises.

``ConfigError`` is raised by the settings loader and also by the layers that
open what the settings name (the audit log file, the TLS certificate): a file
the loader accepted can still fail to open at start-up or on reload, and the
caller must treat both the same way (refuse, and keep the running policy).
It lives here, below every layer, so raising it imports nothing above.
"""

from __future__ import annotations


class ConfigError(Exception):
    """Raised with every invalid key and its reason; ``problems`` lists them.

    Its text is one line (several problems numbered), so a command's error
    and a log record stay one line each.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            text = f"invalid configuration: {problems[0]}"
        else:
            text = f"invalid configuration, {len(problems)} problems: " + " ".join(
                f"[{number}] {problem}" for number, problem in enumerate(problems, 1))
        super().__init__(text)
