"""Gradio views, one module each: ``build(settings)`` lays out its components inside the current Blocks."""
