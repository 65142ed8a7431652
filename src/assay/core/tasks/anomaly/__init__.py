"""Anomaly detection (models trained on good parts only): thresholds and image-level rates."""
