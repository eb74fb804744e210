"""Allow ``python -m icapdlp``."""

import sys

from icapdlp.cli.main import main

sys.exit(main())
