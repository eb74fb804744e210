"""Metrics, health endpoints and the PHI-free audit log."""
