"""Tests of the pure projections (engine/projections)."""
