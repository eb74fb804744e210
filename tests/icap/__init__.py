"""Tests of the sans-IO ICAP codec."""
