"""asyncio ICAP server: sockets, TLS, worker pool, lifecycle. Drives the sans-IO codec.

- :mod:`.app`        composition root (settings -> key -> pool -> adapter -> observer -> server), reload
- :mod:`.listener`   listeners, admission (allow-list, max connections), deadline sweeper, shutdown
- :mod:`.connection` one connection: asyncio Protocol feeding the codec, timeouts, flow control
- :mod:`.exchange`   one request: the decision table (preview, 100, 204/200/206, blocks, errors)
- :mod:`.replies`    response heads with ISTag/Date; :mod:`.istag` derives the ISTag
- :mod:`.spool`      body in memory or in a temporary file
- :mod:`.workers`    process pool with per-task deadlines and crash recovery
- :mod:`.acceptors`  extra SO_REUSEPORT acceptor processes reporting to one observer
- :mod:`.access`     client allow-list and the ICAPS TLS context
- :mod:`.lifecycle`  signals: SIGTERM graceful stop, SIGHUP reload
- :mod:`.passthrough` "no change" adapter for protocol tests and the benchmark only
"""
