"""Test suite of icapdlp."""
