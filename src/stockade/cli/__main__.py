"""``python -m stockade.cli``: the same as the ``stockade`` command."""

import sys

from stockade.cli.main import main

sys.exit(main())
