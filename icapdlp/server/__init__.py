"""asyncio ICAP server: sockets, TLS, worker pool. Drives the sans-IO codec.

It is handed its settings, an adapter and an observer; what builds them and
runs the process (signals, reload, extra acceptors) is :mod:`icapdlp.app`, above it.

- :mod:`.listener`   listeners, admission (allow-list, max connections), deadline sweeper, shutdown
- :mod:`.connection` one connection: asyncio Protocol feeding the codec, timeouts, flow control
- :mod:`.exchange`   one request: the decision table (preview, 100, 204/200/206, blocks, errors)
- :mod:`.replies`    response heads with ISTag/Date; :mod:`.istag` derives the ISTag
- :mod:`.spool`      body in memory or in a temporary file
- :mod:`.workers`    process pool with per-task deadlines and crash recovery
- :mod:`.access`     client allow-list and the ICAPS TLS context
- :mod:`.passthrough` "no change" adapter for protocol tests and the benchmark only
"""
