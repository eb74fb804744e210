"""Tests of the asyncio ICAP server, worker pool and lifecycle."""
