"""Helpers shared by test areas: synthetic data generators and process fixtures."""
