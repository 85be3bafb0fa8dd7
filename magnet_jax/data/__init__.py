"""Training data: synthetic token sets (tests, smoke runs) and codec-token datasets built from audio."""
