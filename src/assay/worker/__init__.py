"""The background worker: validations queued by the web app run here, outside the web process."""
