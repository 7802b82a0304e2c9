"""Experiment suites of a detector (``diffad experiment ...``)."""
