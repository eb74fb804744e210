"""Run the real ``icapdlp`` command and judge what a user sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from icapdlp.config.keys import generate_key_file
from tests.support.synthetic import make_study

#: a key given through the environment (what a unit file or a manifest does)
KEY_ENV = {"ICAPDLP_KEY__HEX": "ab" * 32}
#: header-only policy: fast, and the same for every test here
NO_PIXELS = "[profile]\nclean_pixel_data = false\n"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m icapdlp ARGS`` with this checkout on the path and no ICAPDLP_* from the caller."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ICAPDLP_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "icapdlp", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=300)


def one_line(stderr: str, prefix: str) -> str:
    """The single line of a user error: no traceback, nothing else, the command's name first."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def dicom_folder(root: Path, count: int = 2, seed: int = 41) -> tuple[Path, list]:
    """``root/in`` holding ``count`` synthetic DICOM files with planted PHI; the objects."""
    src = root / "in"
    src.mkdir(parents=True)
    objects = make_study(1, count, seed=seed)
    for index, obj in enumerate(objects):
        (src / f"img{index}.dcm").write_bytes(obj.data)
    return src, objects


def key_and_policy(root: Path) -> tuple[Path, Path]:
    key = root / "key"
    generate_key_file(str(key))
    policy = root / "policy.toml"
    policy.write_text(NO_PIXELS)
    return key, policy


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` and its bytes (to prove nothing was written or changed)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
