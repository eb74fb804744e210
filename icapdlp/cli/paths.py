"""Which files ``anonymize`` reads and where each one goes, refused when an input could be overwritten.

Why realpath everywhere: ``data/in/ct.dcm -o data/in``, ``-o ./in/..//in`` and a
symlink to the input folder all name the input by another spelling, and a run
that writes there replaces the original with its de-identified copy (issue
16.1). Anything that would write over, into or around an input is refused
unless ``--in-place`` says that is the intent.
"""

from __future__ import annotations

import os
from pathlib import Path

from icapdlp.cli.errors import UsageError

IN_PLACE_HINT = "choose another output folder, or pass --in-place to replace the input files"


def check_output_folder(output: Path, *, create: bool) -> None:
    """An output that is a folder (created when ``create``) and writable; UsageError otherwise."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: exists and is not a folder; give a folder for the output "
                         "(it is created if missing)")
    if not create:
        return
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{output}: cannot create the output folder ({(exc.strerror or '').lower()}); "
                         "choose a folder you may write to") from None
    if not os.access(output, os.W_OK | os.X_OK):
        raise UsageError(f"{output}: the output folder is not writable; choose a folder you may write to")


def plan(inputs: list[str], output: Path | None, *, in_place: bool) -> list[tuple[Path, Path]]:
    """(source, destination) pairs: folders mirrored below ``output``, files placed in it.

    With ``output`` None (only with ``in_place``) each file is its own destination.
    """
    for item in inputs:
        if not os.path.exists(item):
            raise UsageError(f"{item}: no such file or folder; check the path")
        if not (os.path.isdir(item) or os.path.isfile(item)):
            raise UsageError(f"{item}: not a regular file or folder; give DICOM files or folders")
    if output is not None and not in_place:
        _refuse_overlap(inputs, output)
    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        root = Path(item)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file())
            pairs += [(p, output / p.relative_to(root) if output is not None else p) for p in files]
        else:
            pairs.append((root, output / root.name if output is not None else root))
    _refuse_collisions(pairs, in_place, [os.path.realpath(item) for item in inputs if os.path.isdir(item)])
    return pairs


def _refuse_overlap(inputs: list[str], output: Path) -> None:
    out = os.path.realpath(output)
    for item in inputs:
        source = os.path.realpath(item)
        if out == source or _inside(out, source):
            raise UsageError(f"{output}: the output is inside the input {item}, so inputs could be "
                             f"overwritten; {IN_PLACE_HINT}")
        if _inside(source, out):
            raise UsageError(f"{output}: the input {item} is inside the output, so it could be overwritten; "
                             f"{IN_PLACE_HINT}")


def _refuse_collisions(pairs: list[tuple[Path, Path]], in_place: bool, input_folders: list[str]) -> None:
    """No destination may be another pair's destination, nor (unless in place) a source under another name
    (a symlink, a hard link) or a path inside an input folder (through a symlinked folder below OUT)."""
    sources = {_identity(source): source for source, _ in pairs}
    seen: dict[str, Path] = {}
    for source, destination in pairs:
        real = os.path.realpath(destination)
        if real in seen:
            raise UsageError(f"{destination}: {seen[real]} and {source} would both be written here; "
                             "anonymize them into separate output folders")
        seen[real] = source
        if in_place:
            continue
        target = _identity(destination)
        if target in sources:
            raise UsageError(f"{destination}: is the input {sources[target]} under another name, so it would be "
                             f"overwritten; {IN_PLACE_HINT}")
        folder = next((f for f in input_folders if _inside(real, f)), None)
        if folder is not None:
            raise UsageError(f"{destination}: leads into the input folder {folder} (a symlink below the output), so "
                             f"inputs could be overwritten; {IN_PLACE_HINT}")


def _identity(path: Path) -> str:
    """The same string for every name of one file: device and inode when it exists, else its realpath."""
    try:
        info = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return f"{info.st_dev}:{info.st_ino}"


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder and path != folder
