"""The application: wires settings, key, adapter, observability and server into a running icapdlp.

- :mod:`.application` composition root (settings -> key -> pool -> adapter -> observer -> server), reload,
  and the entry point of extra acceptor processes
- :mod:`.acceptors`   extra SO_REUSEPORT acceptor processes reporting to one observer
- :mod:`.lifecycle`   signals: SIGTERM graceful stop, SIGHUP reload
- :mod:`.notify`      systemd's READY=1 / RELOADING=1 / STOPPING=1, without libsystemd

It is the only layer that knows every other (the command line above it
only parses arguments), so it is the only place where they meet.
"""
