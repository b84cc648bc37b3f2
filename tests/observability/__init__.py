"""Tests of tracing, metrics, the Prometheus endpoint and structured logging."""
