from __future__ import annotations

import pytest

from tests.server.harness import IcapClient, ScriptedAdapter, ServerThread, make_settings


@pytest.fixture
def icap_server():
    """Factory: ``icap_server(adapter=None, limits={...}, server={...})`` -> running ServerThread."""
    started: list[ServerThread] = []

    def start(adapter=None, observer=None, replies=None, **settings_kwargs) -> ServerThread:
        thread = ServerThread(make_settings(**settings_kwargs), adapter or ScriptedAdapter(), observer, replies)
        started.append(thread.start())
        return thread

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def connect():
    clients: list[IcapClient] = []

    def open_client(port: int, **kwargs) -> IcapClient:
        clients.append(IcapClient(port, **kwargs))
        return clients[-1]

    yield open_client
    for client in clients:
        client.close()
