"""pytest plugin entry point (``-p no:concurrency`` turns it off)."""
