"""Engines move batches through a decoder, a runtime and accumulators. No metric logic lives here."""
