"""The built-in demo: synthetic cable-surface scans, two models, one validation."""
