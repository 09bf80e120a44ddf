"""Tests that drive a real headless browser (Debian's chromium)."""
