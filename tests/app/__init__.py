"""Tests of the application wiring (icapdlp.app): start-up, reload, acceptors, serve."""
