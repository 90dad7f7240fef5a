"""``python -m seg2vid`` runs the console script."""

import sys

from seg2vid.cli import main

sys.exit(main())
