"""Real HTTP servers that misbehave on purpose, for the monitoring tests and benchmarks."""
