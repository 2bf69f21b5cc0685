"""``python -m cusweep.cli``: the ``cusweep`` command."""

import sys

from . import main

sys.exit(main())
