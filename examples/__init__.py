"""Sample services for the demo and the tests (not part of the driftwatch package)."""
