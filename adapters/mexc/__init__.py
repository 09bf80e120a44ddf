"""The MEXC Futures (USDT-M perpetual) adapter: endpoints, signing, codecs, REST and WS clients."""
