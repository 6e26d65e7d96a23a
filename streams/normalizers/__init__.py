"""One module per channel, ``streams.normalizers.<channel>``, each with ``normalize(raw)``."""
