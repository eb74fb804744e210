"""A kept binary value that holds a whole DICOM object blocks the object (red-team F32).

The nested object is a synthetic CT's Part-10 file (or its bare dataset);
the outer object keeps the value (Waveform Data, Spectroscopy Data, Pixel
Data), so rewriting the outer header alone would pass the inner patient on.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydicom import Dataset, Sequence

from icapdlp.dicom.pipeline import deidentify_dataset
from icapdlp.verdict import Blocked, BlockReason
from tests.dicom.helpers import config, run
from tests.support.synthetic import make_ct, to_bytes


def _inner(bare: bool = False) -> bytes:
    return to_bytes(make_ct(31, rows=8, columns=8).dataset, bare=bare)


def _waveform(ds: Dataset, data: bytes) -> None:
    item = Dataset()
    item.WaveformBitsAllocated, item.WaveformSampleInterpretation = 16, "SS"
    item.NumberOfWaveformChannels, item.NumberOfWaveformSamples = 1, len(data) // 2
    item.SamplingFrequency = 500
    item.WaveformData = data + b"\0" * (len(data) % 2)
    item["WaveformData"].VR = "OW"
    ds.WaveformSequence = Sequence([item])


def _outer(change) -> bytes:
    ds = copy.deepcopy(make_ct(32, signatures=False).dataset)
    change(ds)
    return to_bytes(ds)


def _spectroscopy(ds: Dataset, data: bytes) -> None:
    ds.add_new(0x56000020, "OF", data + b"\0" * (-len(data) % 4))


def _pixels(ds: Dataset, data: bytes) -> None:
    size = len(ds.PixelData)
    ds.PixelData = (data + bytes(size))[:size]


@pytest.mark.parametrize("place", [_waveform, _spectroscopy, _pixels],
                         ids=["waveform", "spectroscopy", "pixels"])
@pytest.mark.parametrize("bare", [False, True], ids=["part10", "bare-dataset"])
def test_a_binary_value_holding_a_dicom_object_is_blocked(place, bare):
    inner = _inner(bare)
    with pytest.raises(Blocked) as caught:
        run(_outer(lambda ds: place(ds, inner)))
    assert caught.value.reason is BlockReason.UNINSPECTABLE


def test_a_part10_file_behind_other_samples_is_found_too():
    with pytest.raises(Blocked):
        run(_outer(lambda ds: _waveform(ds, bytes(range(256)) * 3 + _inner())))


def test_a_real_looking_waveform_is_kept():
    rng = np.random.default_rng(5)
    samples = (np.sin(np.linspace(0, 60, 5000)) * 800 + rng.normal(0, 20, 5000)).astype("<i2")
    _, out = run(_outer(lambda ds: _waveform(ds, samples.tobytes())))
    assert out.WaveformSequence[0].WaveformData == samples.tobytes()


def test_dicom_json_inline_binary_holding_a_dataset_is_blocked():
    ds = copy.deepcopy(make_ct(33, signatures=False).dataset)
    _waveform(ds, _inner())
    with pytest.raises(Blocked):
        deidentify_dataset(ds, config())
