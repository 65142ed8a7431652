"""Tasks beyond classification, one package each (detection first)."""
