"""Percepts from observations: fused point clouds, virtual views, keypoints, gaze, text features."""
