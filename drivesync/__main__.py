"""``python -m drivesync`` is the ``drivesync`` command."""
from .cli import run

run()
