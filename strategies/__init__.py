"""Example strategy plugins shipped with tapeline (pure: no clock, no randomness, no I/O).

Each is small, commented and configured through a frozen config. They are registered as
entry points (group ``tapeline.strategies``) in pyproject.toml, so
``tapeline run --strategy market-maker`` finds them by name.
"""
