"""SD3.5 generation on the server: presets (data), parameter validation and PNG metadata, the one lazily
loaded pipeline, and the service the Gradio handlers call. Heavy libraries load on first use."""

from webapp.generation.presets import MEMORY_MODE_NAMES, MEMORY_MODES, PRESET_NAMES, PRESETS

__all__ = ["MEMORY_MODES", "MEMORY_MODE_NAMES", "PRESETS", "PRESET_NAMES"]
