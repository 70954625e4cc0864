"""ns_exporter: a Prometheus exporter and monitoring agent for Linux namespaces."""

__version__ = "0.1.0"
