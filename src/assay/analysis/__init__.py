"""Adapters to analysis libraries (cleanlab); each imports only core."""
