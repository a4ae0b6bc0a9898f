"""A seeded fault campaign for pull, push and push --watch (see campaign.py; run `python -m tests.faults -h`)."""
