"""Keyframe policies (the dual-stream view transformer and its baselines), training and evaluation."""
