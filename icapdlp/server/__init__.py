"""asyncio ICAP server: sockets, TLS, worker pool, lifecycle. Drives the sans-IO codec."""
