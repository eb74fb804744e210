"""Shared helpers for the DICOM pipeline tests: a fixed test key and configs."""

from __future__ import annotations

import io
from dataclasses import replace

import pydicom

from icapdlp.dicom.options import DicomLimits, ProfileOptions
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes

#: a fixed test key (never a deployment key); 32 bytes like `icapdlp genkey` writes
TEST_KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
BASIC = ProfileOptions(clean_pixel_data=False)


def config(profile: ProfileOptions = BASIC, limits: DicomLimits | None = None, key: bytes = TEST_KEY,
           **profile_changes) -> PipelineConfig:
    if profile_changes:
        profile = replace(profile, **profile_changes)
    return PipelineConfig(profile=profile, limits=limits or DicomLimits(), key=key)


def run(data: bytes, cfg: PipelineConfig | None = None):
    """De-identify and read the output back with pydicom (it must parse)."""
    result = deidentify_bytes(data, cfg or config())
    return result, pydicom.dcmread(io.BytesIO(result.data))
