"""Tests of the package structure itself: which layer may import which."""
