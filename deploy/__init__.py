"""The real-arm side: ROS bridge, safety layer and calibration."""
