"""A persistent Tesseract engine per process, through Tesseract's C API (ctypes).

Why: starting the ``tesseract`` program costs 70-77 ms of CPU per call, 81 % of
it in ``UnicharAmbigs::LoadUniversal`` (a compiled-in table parsed at every
initialisation; no ``-c`` setting avoids it). pytesseract starts one process
per frame, so that start-up was over half of a frame's time. Here the engine is
initialised once per worker process and reused for every image; each image
pays only for layout analysis and recognition.

The settings are the ones the command line gets from
:data:`icapdlp.pixels.ocr.TESSERACT_CONFIG` (PSM, OEM, ``-c`` variables), and the
resolution is the one the command line reads from the BMP pytesseract writes
(PIL stores 96 dpi), so both engines read the same words from the same image
(tests/pixels/test_tesseract_api.py asserts it on generated frames).

The API object is not thread-safe; :class:`EnginePool` hands each concurrent
caller its own object (workers are single-threaded: one object per worker; the
in-process pool of a server without workers may create one per thread).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

#: the Debian package libtesseract5 (a dependency of tesseract-ocr) installs this soname
DEFAULT_LIBRARY = "libtesseract.so.5"
#: TessOcrEngineMode OEM_LSTM_ONLY, i.e. ``--oem 1``
OEM_LSTM_ONLY = 1
#: TessPageSegMode PSM_SPARSE_TEXT, i.e. ``--psm 11``
PSM_SPARSE_TEXT = 11
#: what the command line reads from pytesseract's BMP: PIL writes 3780 px/m = 96 dpi, which
#: Tesseract accepts as credible (>= 70) and uses as is
SOURCE_DPI = 96
#: the header line the command line's TSV renderer writes before the page's rows
#: (``TessTsvRenderer::BeginDocumentHandler``); GetTsvText returns only the rows
TSV_HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
#: the images we hand over: 8-bit grey, one byte per pixel
BYTES_PER_PIXEL = 1
#: Tesseract's per-image diagnostics ("guessing pitch as xheight...") go here, not into the
#: worker's stderr and so the server log: pytesseract captured and dropped them on success.
#: Set after initialisation, so an engine that cannot start still says why on stderr.
QUIET_VARIABLES = {"debug_file": os.devnull}


class TesseractApiError(RuntimeError):
    """The library could not be loaded or initialised, or a call failed (PHI-free message)."""


def _bind(library: str) -> ctypes.CDLL:
    """Load ``library`` and declare the C functions we call (wrong types would crash, not raise)."""
    try:
        lib = ctypes.CDLL(library)
    except OSError:
        raise TesseractApiError(f"cannot load {os.path.basename(library)!r}") from None
    handle, c_str, c_int = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    signatures = {
        "TessVersion": (c_str, []),
        "TessBaseAPICreate": (handle, []),
        "TessBaseAPIDelete": (None, [handle]),
        "TessBaseAPIInit2": (c_int, [handle, c_str, c_str, c_int]),
        "TessBaseAPISetVariable": (c_int, [handle, c_str, c_str]),
        "TessBaseAPISetPageSegMode": (None, [handle, c_int]),
        "TessBaseAPISetImage": (None, [handle, ctypes.c_void_p, c_int, c_int, c_int, c_int]),
        "TessBaseAPISetSourceResolution": (None, [handle, c_int]),
        "TessBaseAPIRecognize": (c_int, [handle, ctypes.c_void_p]),
        # a char* we must hand back to TessDeleteText, so not c_char_p (which would copy and drop it)
        "TessBaseAPIGetTsvText": (ctypes.c_void_p, [handle, c_int]),
        "TessDeleteText": (None, [ctypes.c_void_p]),
        "TessBaseAPIClear": (None, [handle]),
        "TessBaseAPIEnd": (None, [handle]),
    }
    for name, (restype, argtypes) in signatures.items():
        try:
            function = getattr(lib, name)
        except AttributeError:
            raise TesseractApiError(f"{os.path.basename(library)!r} has no {name}") from None
        function.restype = restype
        function.argtypes = argtypes
    return lib


def parse_config(config: str) -> tuple[int, int, dict[str, str]]:
    """(psm, oem, variables) from a command-line config such as ``--psm 11 --oem 1 -c a=b``.

    Only what :data:`icapdlp.pixels.ocr.TESSERACT_CONFIG` uses is accepted: an
    option the library path would silently ignore must fail loudly instead.
    """
    psm, oem, variables = PSM_SPARSE_TEXT, OEM_LSTM_ONLY, {}
    tokens = config.split()
    i = 0
    while i < len(tokens):
        flag = tokens[i]
        if i + 1 >= len(tokens):
            raise ValueError(f"{flag} without a value")
        value = tokens[i + 1]
        if flag == "--psm":
            psm = int(value)
        elif flag == "--oem":
            oem = int(value)
        elif flag == "-c" and "=" in value:
            name, _, setting = value.partition("=")
            variables[name] = setting
        else:
            raise ValueError(f"unsupported Tesseract option {flag}")
        i += 2
    return psm, oem, variables


class TesseractApi:
    """One initialised TessBaseAPI: create once, read many images, close at exit."""

    def __init__(self, language: str, config: str, library: str = DEFAULT_LIBRARY) -> None:
        psm, oem, variables = parse_config(config)
        self._lib = _bind(library)
        self._handle = self._lib.TessBaseAPICreate()
        if not self._handle:
            raise TesseractApiError("TessBaseAPICreate failed")
        try:
            # no data path: TESSDATA_PREFIX or the compiled-in path, exactly as the command line finds it
            if self._lib.TessBaseAPIInit2(self._handle, None, language.encode(), oem) != 0:
                raise TesseractApiError(f"Tesseract could not initialise language {language!r}")
            self._lib.TessBaseAPISetPageSegMode(self._handle, psm)
            for name, value in {**variables, **QUIET_VARIABLES}.items():
                if not self._lib.TessBaseAPISetVariable(self._handle, name.encode(), value.encode()):
                    raise TesseractApiError(f"Tesseract has no variable {name!r}")
        except BaseException:
            self._lib.TessBaseAPIDelete(self._handle)
            self._handle = None
            raise

    def tsv(self, image: np.ndarray, dpi: int = SOURCE_DPI) -> str:
        """The command line's TSV output (header line included) for an 8-bit grey image."""
        if self._handle is None:
            raise TesseractApiError("engine closed")
        if image.dtype != np.uint8 or image.ndim != 2:
            raise ValueError("expected a 2-D uint8 image")
        image = np.ascontiguousarray(image)
        rows, cols = image.shape
        lib, handle = self._lib, self._handle
        try:
            lib.TessBaseAPISetImage(handle, image.ctypes.data, cols, rows, BYTES_PER_PIXEL, image.strides[0])
            lib.TessBaseAPISetSourceResolution(handle, dpi)
            if lib.TessBaseAPIRecognize(handle, None) != 0:
                raise TesseractApiError("Tesseract recognition failed")
            text = lib.TessBaseAPIGetTsvText(handle, 0)
            if not text:
                raise TesseractApiError("Tesseract returned no TSV")
            try:
                return TSV_HEADER + ctypes.string_at(text).decode("utf-8", "replace")
            finally:
                lib.TessDeleteText(text)
        finally:
            lib.TessBaseAPIClear(handle)  # drop the image and its results, keep the loaded model

    def close(self) -> None:
        if self._handle is not None:
            self._lib.TessBaseAPIEnd(self._handle)
            self._lib.TessBaseAPIDelete(self._handle)
            self._handle = None


class EnginePool:
    """Initialised engines for one (language, config, library), reused across calls in this process.

    An engine is taken for one image and given back; a caller finding none idle
    creates one. A worker process therefore holds exactly one; a failure to
    create is raised to each caller (and retried on the next), never hidden.
    """

    def __init__(self, language: str, config: str, library: str) -> None:
        self.key = (language, config, library)
        self._idle: list[TesseractApi] = []
        self._lock = threading.Lock()
        self.created = 0

    @contextmanager
    def engine(self) -> Iterator[TesseractApi]:
        with self._lock:
            api = self._idle.pop() if self._idle else None
        if api is None:
            api = TesseractApi(*self.key)
            with self._lock:
                self.created += 1
        try:
            yield api
        except BaseException:
            api.close()  # an engine that failed mid-image is not trusted with the next one
            raise
        with self._lock:
            self._idle.append(api)

    def warm(self) -> None:
        """Initialise one engine now (worker start-up), so the first image does not pay for it."""
        with self.engine():
            pass

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for api in idle:
            api.close()


_POOLS: dict[tuple[int, str, str, str], EnginePool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(language: str, config: str, library: str = DEFAULT_LIBRARY) -> EnginePool:
    """This process's pool for these settings (a forked child builds its own, never its parent's)."""
    key = (os.getpid(), language, config, library)
    with _POOLS_LOCK:
        found = _POOLS.get(key)
        if found is None:
            found = _POOLS[key] = EnginePool(language, config, library)
        return found


@atexit.register
def _close_all() -> None:
    """End every engine at a normal exit (Tesseract warns of leaked models otherwise)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        pool.close()


def library_loads(library: str = DEFAULT_LIBRARY) -> bool:
    """Cheap check for readiness in the main process: the library and its symbols load (no model)."""
    try:
        _bind(library)
    except TesseractApiError:
        return False
    return True
