"""Tests of the MEXC adapter."""
