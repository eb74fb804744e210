"""Concurrency, slowloris and the other deadlines, overload and the client allow-list."""

from __future__ import annotations

import asyncio
import socket
import time

from icapdlp.adaptation.api import NeedBody
from tests.icap import messages as m
from tests.server.harness import IcapClient, ScriptedAdapter

BODY = bytes(range(256)) * 16


async def _exchange(port: int, rounds: int) -> list[tuple[int, bytes]]:
    """One persistent connection: a GET (204) and a POST echo per round."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    results = []
    try:
        for _ in range(rounds):
            writer.write(m.reqmod_get_preview0())
            head = await reader.readuntil(b"\r\n\r\n")
            results.append((int(head.split(b" ")[1]), b""))
            data, _ = m.reqmod_post(BODY, allow_204=False)
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(len(m.HTTP_POST))
            body = b""
            while (size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)) != 0:
                body += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
            results.append((int(head.split(b" ")[1]), body))
    finally:
        writer.close()
    return results


def test_200_concurrent_connections_all_get_correct_answers(icap_server):
    thread = icap_server(ScriptedAdapter(), limits={"max_connections": 400})

    async def scenario():
        return await asyncio.wait_for(asyncio.gather(*(_exchange(thread.port, 3) for _ in range(200))), 60)

    results = asyncio.run(scenario())
    assert len(results) == 200
    for per_connection in results:
        assert per_connection == [(204, b""), (200, BODY)] * 3
    assert thread.observer.opened == 200


def test_one_byte_per_second_is_cut_by_the_header_timeout_while_others_are_served(icap_server):
    thread = icap_server(ScriptedAdapter(), limits={"header_timeout": 1.0})
    request = m.reqmod_get_preview0()

    async def slow_client() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", thread.port)
        started = time.monotonic()
        received = b""
        try:
            for byte in request:
                writer.write(bytes([byte]))
                try:
                    received += await asyncio.wait_for(reader.read(4096), 1.0)
                except asyncio.TimeoutError:
                    continue
                if reader.at_eof():
                    break
            received += await reader.read()
        except ConnectionError:
            pass
        return time.monotonic() - started, received

    async def fast_clients() -> list:
        results = []
        for _ in range(5):  # keeps being served while the slow one trickles
            results.extend(await _exchange(thread.port, 2))
            await asyncio.sleep(0.2)
        return results

    async def scenario():
        return await asyncio.gather(slow_client(), fast_clients())

    (elapsed, received), fast = asyncio.run(scenario())
    assert received.startswith(b"ICAP/1.0 408 Request Timeout\r\n") and b"Connection: close" in received
    assert 0.9 < elapsed < 4.0
    assert fast == [(204, b""), (200, BODY)] * 10


def test_idle_connection_is_closed_after_idle_timeout(icap_server, connect):
    client = connect(icap_server(limits={"idle_timeout": 0.5}).port)
    client.send(m.SQUID_OPTIONS)
    assert client.read_response().status == 200
    started = time.monotonic()
    assert client.is_closed(timeout=5)
    assert time.monotonic() - started < 3


def test_whole_request_timeout_answers_408_and_closes(icap_server, connect):
    thread = icap_server(ScriptedAdapter(delay=5), limits={"request_timeout": 0.5})
    client = connect(thread.port)
    client.send(m.reqmod_get_preview0())
    response = client.read_response()
    assert response.status == 408 and client.is_closed()
    assert thread.observer.records[-1].icap_status == 408


def test_slow_body_upload_hits_the_request_timeout(icap_server, connect):
    client = connect(icap_server(ScriptedAdapter(preview=NeedBody()), limits={"request_timeout": 0.5}).port)
    data, _ = m.reqmod_post(BODY)
    client.send(data[:-200])  # the rest never comes
    assert client.read_response().status == 408 and client.is_closed()


def test_connections_over_max_connections_get_503(icap_server, connect):
    thread = icap_server(limits={"max_connections": 2})
    first, second = connect(thread.port), connect(thread.port)
    for client in (first, second):
        client.send(m.SQUID_OPTIONS)
        assert client.read_response().status == 200
    third = connect(thread.port)
    response = third.read_response()
    assert response.status == 503 and response.headers["connection"] == "close" and third.is_closed()
    first.close()
    time.sleep(0.2)
    fourth = connect(thread.port)
    fourth.send(m.SQUID_OPTIONS)
    assert fourth.read_response().status == 200


def test_clients_outside_the_allow_list_are_disconnected(icap_server, connect):
    refused = connect(icap_server(server={"allowed_clients": ("10.0.0.0/8", "192.168.1.7")}).port)
    try:
        refused.send(m.SQUID_OPTIONS)
    except OSError:
        pass
    assert refused.is_closed()
    allowed = connect(icap_server(server={"allowed_clients": ("127.0.0.0/8",)}).port)
    allowed.send(m.SQUID_OPTIONS)
    assert allowed.read_response().status == 200


def test_graceful_shutdown_finishes_the_request_in_flight(icap_server):
    thread = icap_server(ScriptedAdapter(delay=0.5))
    busy = IcapClient(thread.port)
    idle = IcapClient(thread.port)
    idle.send(m.SQUID_OPTIONS)
    idle.read_response()
    busy.send(m.reqmod_get_preview0())
    time.sleep(0.1)
    stopper = asyncio.run_coroutine_threadsafe(thread.server.shutdown(5), thread.loop)
    assert busy.read_response().status == 204  # finished despite the shutdown
    assert idle.is_closed(timeout=3) and busy.is_closed(timeout=3)
    stopper.result(5)
    try:
        socket.create_connection(("127.0.0.1", thread.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused
    busy.close()
    idle.close()
