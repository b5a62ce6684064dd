"""Streaming video memory under a strict budget and the streaming embodied QA benchmark."""
