"""Who may connect: the client address allow-list and the ICAPS (TLS) context."""

from __future__ import annotations

import ipaddress
import ssl

from icapdlp.errors import ConfigError


class AllowList:
    """Exact addresses or CIDR networks; empty means every client is allowed."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        networks = []
        problems = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                problems.append(f"server.allowed_clients: {entry!r} is not an IP address or CIDR network")
        if problems:
            raise ConfigError(problems)
        self._networks = tuple(networks)

    def allows(self, peer) -> bool:
        if not self._networks:
            return True
        if not peer:
            return False  # a peer without an address (e.g. a Unix socket) is not on any list
        try:
            address = ipaddress.ip_address(peer[0])
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)


def tls_context(tls) -> ssl.SSLContext:
    """A server context for ICAPS; with ``client_ca_file`` clients need a certificate from that CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=tls.client_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([f"tls: cannot load certificate, key or CA ({type(exc).__name__}: "
                           f"{getattr(exc, 'strerror', None) or exc})"]) from None
    return context
