"""Pure domain logic: specs, batches, accumulators, statistics and result types (numpy + stdlib)."""
