"""Dataset readers (folders, manifests, tables, importers for known datasets) and decoders."""
