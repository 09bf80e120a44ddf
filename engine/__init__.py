"""tapeline's exchange-neutral core: journal, model, commands, projections and runtime."""

__version__ = "0.1.0"
