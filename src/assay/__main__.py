"""``python -m assay``: the same as the ``assay`` command."""

from assay.cli.main import run

if __name__ == "__main__":  # not when a spawned process (the sidecar) imports this module
    run()
