"""The web app: a thin FastAPI layer over the same services the CLI uses."""
