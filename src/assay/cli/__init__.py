"""The ``assay`` command line: thin commands over the services."""
