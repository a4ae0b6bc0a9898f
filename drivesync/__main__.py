"""``python -m drivesync`` is the ``drivesync`` command."""
import sys

from .cli import main

sys.exit(main())
