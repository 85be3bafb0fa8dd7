"""Measuring audio: how well a codec reconstructs, how well generations follow their prompts."""
