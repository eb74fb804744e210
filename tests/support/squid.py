"""Run a real Squid for end-to-end tests, configured from the shipped examples.

The Squid configuration a test uses is rendered from a file in
``squid-examples/`` with only machine-specific lines changed (ports, paths,
log destinations, the failure limit), so the e2e suite proves the examples
users copy actually work. Squid runs in the foreground (``squid -N``) on a
free 127.0.0.1 port with its own work directory; when started as root it
drops to the ``proxy`` user, so that directory is made accessible to it.

Stopping is by PID only: Squid itself, then any helper process it started
(pinger, certificate generator) that outlived it, identified as a recorded
descendant whose command line still names the same program.

The test PKI helpers at the end (CAs and leaf certificates made with the
openssl CLI) serve the ssl_bump and ICAPS configurations.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SQUID = "/usr/sbin/squid"
EXAMPLES = Path(__file__).resolve().parents[2] / "squid-examples"
#: Squid needs a moment to parse its config and open ports; 20 s covers a busy CI box
START_TIMEOUT = 20.0
#: shutdown_lifetime in the rendered config is 0 s; this leaves room for a busy machine
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def squid_user() -> pwd.struct_passwd | None:
    """The user Squid drops to when started as root (Debian: ``proxy``); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("proxy")
    except KeyError:
        return None


def make_shared_dir(prefix: str) -> Path:
    """A temporary directory Squid (possibly running as ``proxy``) can write.

    pytest's own tmp_path lives under a 0700 directory of the current user,
    which ``proxy`` cannot traverse; this one sits directly in the temp dir.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    user = squid_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


def render_example(
    name: str,
    *,
    replace_lines: dict[str, list[str]] | None = None,
    substitutions: Iterable[tuple[str, str]] = (),
    append: Iterable[str] = (),
) -> str:
    """The text of ``squid-examples/<name>`` with test-specific edits.

    ``replace_lines`` maps a line prefix (e.g. ``"http_port"``) to the lines
    that replace every line starting with it (inserted where the first one
    was). ``substitutions`` are plain string replacements applied afterwards.
    Each prefix and each substitution must match, so an edited example that
    no longer fits the test fails loudly instead of silently testing less.
    """
    text = (EXAMPLES / name).read_text()
    lines = text.splitlines()
    for prefix, new_lines in (replace_lines or {}).items():
        out: list[str] = []
        done = False
        for line in lines:
            if line.startswith(prefix):
                if not done:
                    out.extend(new_lines)
                    done = True
                continue
            out.append(line)
        if not done:
            raise AssertionError(f"{name}: no line starts with {prefix!r}")
        lines = out
    text = "\n".join(lines) + "\n"
    for old, new in substitutions:
        if old not in text:
            raise AssertionError(f"{name}: {old!r} not found")
        text = text.replace(old, new)
    return text + "\n".join(append) + "\n"


def harness_overrides(workdir: Path) -> list[str]:
    """Directives appended to every rendered example: private paths, quick stop."""
    return [
        "# --- test harness overrides ---",
        f"pid_filename {workdir}/squid.pid",
        f"cache_log {workdir}/cache.log",
        "visible_hostname icapdlp-e2e",
        # tests stop Squid often; in-flight transfers are done by then
        "shutdown_lifetime 0 seconds",
    ]


def example_log_substitutions(workdir: Path) -> list[tuple[str, str]]:
    """Point the examples' logs into the work directory, written directly (no log daemon)."""
    return [
        ("daemon:/var/log/squid/access.log", f"stdio:{workdir}/access.log"),
        ("daemon:/var/log/squid/icap.log", f"stdio:{workdir}/icap.log"),
        ("coredump_dir /var/spool/squid", f"coredump_dir {workdir}"),
    ]


@dataclass
class SquidProxy:
    """One foreground Squid process and its work directory."""

    config_text: str
    workdir: Path
    port: int
    process: subprocess.Popen | None = None
    helper_pids: dict[int, str] = field(default_factory=dict)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "squid.conf"

    def start(self) -> "SquidProxy":
        self.config_path.write_text(self.config_text)
        self.config_path.chmod(0o644)
        check = subprocess.run([SQUID, "-k", "parse", "-f", str(self.config_path)],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"squid -k parse failed:\n{check.stderr[-3000:]}")
        stderr = open(self.workdir / "squid.stderr", "wb")
        self.process = subprocess.Popen(
            [SQUID, "-N", "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, cwd=self.workdir,
        )
        stderr.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"squid exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"squid did not listen on {self.port} within {START_TIMEOUT}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for name in ("squid.stderr", "cache.log"):
            path = self.workdir / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                text += f"--- {name}\n" + "\n".join(tail) + "\n"
        return text

    def _remember_helpers(self) -> None:
        """Record every descendant of Squid with its command line (helpers outlive it)."""
        if self.process is None:
            return
        parents = {self.process.pid}
        for _ in range(3):  # helpers of helpers are at most a level or two deep
            for pid, ppid, cmdline in _processes():
                if ppid in parents and pid not in self.helper_pids:
                    self.helper_pids[pid] = cmdline
                    parents.add(pid)

    def stop(self) -> None:
        if self.process is None:
            return
        self._remember_helpers()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            # a second shutdown signal skips Squid's grace period; tests have nothing in flight
            time.sleep(0.2)
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for pid, cmdline in self.helper_pids.items():
            if _cmdline(pid) == cmdline:  # still the same program, not a reused PID
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self.process = None

    def icap_log(self) -> list[str]:
        path = self.workdir / "icap.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def wait_icap_log(self, count: int, timeout: float = 10.0) -> list[str]:
        """The icap.log lines once at least ``count`` exist (Squid writes them at transaction end)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.icap_log()
            if len(lines) >= count:
                return lines
            time.sleep(0.05)
        return self.icap_log()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


#: a line of the examples' icapdlp_icap format: time, duration, outcome/status, size, method, URI
ICAP_LOG_LINE = re.compile(
    r"^\S+\s+\d+\s+(?P<outcome>\S+)/(?P<status>\d+)\s+\S+\s+(?P<method>\S+)\s+(?P<uri>\S+)")


def icap_outcomes(lines: Iterable[str], service_path: str | None = None) -> list[tuple[str, str, int]]:
    """(ICAP method, outcome, status) of each icap.log line in the examples' format."""
    out = []
    for line in lines:
        match = ICAP_LOG_LINE.match(line)
        if match and (service_path is None or match["uri"].endswith(service_path)):
            out.append((match["method"], match["outcome"], int(match["status"])))
    return out


def _processes() -> list[tuple[int, int, str]]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("latin-1")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.append((int(entry), ppid, _cmdline(int(entry))))
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("latin-1").strip()
    except OSError:
        return ""


def start_squid_from_example(
    name: str,
    *,
    icap_port: int | None = None,
    replace_lines: dict[str, list[str]] | None = None,
    substitutions: Iterable[tuple[str, str]] = (),
    append: Iterable[str] = (),
    http_port_options: str = "",
) -> SquidProxy:
    """Render ``squid-examples/<name>`` for this machine and start Squid on a free port.

    ``icap_port`` replaces the examples' ``127.0.0.1:1344``; ``http_port_options``
    follow the address on the ``http_port`` line (ssl-bump and its CA files). The failure limit
    is disabled so a restarted icapdlp is used at once (the example's own
    settings would keep the service down for its 30 s revival delay).
    """
    workdir = make_shared_dir("icapdlp-squid-")
    port = free_port()
    lines = {"http_port": [f"http_port 127.0.0.1:{port} {http_port_options}".rstrip()],
             "icap_service_failure_limit": ["icap_service_failure_limit -1"]}
    lines.update(replace_lines or {})
    subs = example_log_substitutions(workdir) + list(substitutions)
    if icap_port is not None:
        subs.append(("icap://127.0.0.1:1344/", f"icap://127.0.0.1:{icap_port}/"))
    text = render_example(name, replace_lines=lines, substitutions=subs,
                          append=harness_overrides(workdir) + list(append))
    proxy = SquidProxy(text, workdir, port)
    try:
        return proxy.start()
    except BaseException:
        proxy.cleanup()
        raise


# -- test PKI with the openssl CLI (cryptography is not in the pinned venv) --------


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def make_ca(directory: Path, name: str, common_name: str) -> CertFiles:
    """A self-signed CA certificate and key (2048-bit RSA, valid 2 days: tests only)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "2", "-nodes",
             "-subj", f"/CN={common_name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", str(key), "-out", str(cert))
    _share(cert, key)
    return CertFiles(cert, key)


def issue_cert(directory: Path, name: str, ca: CertFiles, dns_names: Iterable[str],
               ip_addresses: Iterable[str] = ("127.0.0.1",), client: bool = False) -> CertFiles:
    """A leaf certificate signed by ``ca`` for the given names (server or client use)."""
    dns_names = list(dns_names)
    cert, key, csr = directory / f"{name}.crt", directory / f"{name}.key", directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    san = ",".join([f"DNS:{n}" for n in dns_names] + [f"IP:{ip}" for ip in ip_addresses])
    usage = "clientAuth" if client else "serverAuth"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={dns_names[0]}",
             "-keyout", str(key), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", str(ext), "-out", str(cert))
    _share(cert, key)
    return CertFiles(cert, key)


def _share(cert: Path, key: Path) -> None:
    """Certificates world-readable; keys readable by the Squid user only (and by root)."""
    cert.chmod(0o644)
    key.chmod(0o600)
    user = squid_user()
    if user is not None:
        os.chown(key, user.pw_uid, user.pw_gid)


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr[-2000:]}")
