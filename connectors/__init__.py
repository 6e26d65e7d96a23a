"""Channel connectors: turn each outside channel into raw events on ``intake.raw.<channel>``."""
