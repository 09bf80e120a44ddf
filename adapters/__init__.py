"""Exchange adapters: the shell between exchanges and tapeline's exchange-neutral engine."""
