"""Use cases shared by the CLI, the Python API and the web app."""
