"""Pure readers of procfs (and nsfs ioctls). Nothing here knows Prometheus."""
