"""``python -m gmat_sweep`` runs the ``gmat-sweep`` command."""

import sys

from gmat_sweep.cli import main

sys.exit(main())
