"""Tests of the simulated MEXC exchange core (adapters/mexc/sim)."""
