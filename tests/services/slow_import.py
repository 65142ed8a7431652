"""A module whose import takes a minute: stands for the sidecar's slow imports in a test."""

import time

time.sleep(60)
