"""face-studio: browser-first face parsing with a GPU server for SD3.5 generation and face-aware editing."""

__version__ = "0.1.0"
