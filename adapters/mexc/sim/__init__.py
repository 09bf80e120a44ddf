"""A local MEXC-compatible exchange: matching engine, accounts, REST and WebSocket server."""
