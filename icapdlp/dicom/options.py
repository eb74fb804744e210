"""The de-identification profile a policy selects: PS3.15 Annex E options.

Each flag is one column of Table E.1-1 (or one pixel option). The default is
the Basic Application Confidentiality Profile plus Clean Pixel Data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class ServiceMode(StrEnum):
    """What a service does with the DICOM objects it finds; resolved once, when the config loads.

    Here, with the profile, because both the service configuration and the
    pipeline (which answers report-only with its input) name it. Config files
    keep the string values.
    """

    DEIDENTIFY = "deidentify"
    #: refuse every DICOM object (policy-blocks-dicom); the pipeline never runs
    BLOCK = "block"
    #: run the pipeline for the report and audit, pass the object unchanged
    REPORT_ONLY = "report-only"


@dataclass(frozen=True)
class ProfileOptions:
    """Which Annex E options apply. Field names match the policy file keys."""

    clean_pixel_data: bool = True  # E.3.1, 113101
    clean_recognizable_visual_features: bool = False  # E.3.2, 113102
    clean_graphics: bool = False  # E.3.3, 113103
    clean_structured_content: bool = False  # E.3.4, 113104
    clean_descriptors: bool = False  # E.3.5, 113105
    #: E.3.6: "remove" (basic), "full" (113106) or "modified" (113107, keyed offset per patient)
    longitudinal_dates: Literal["remove", "full", "modified"] = "remove"
    retain_patient_characteristics: bool = False  # E.3.7, 113108
    retain_device_identity: bool = False  # E.3.8, 113109
    retain_uids: bool = False  # E.3.9, 113110
    retain_safe_private: bool = False  # E.3.10, 113111
    retain_institution_identity: bool = False  # E.3.11, 113112
    #: private creator strings whose blocks Retain Safe Private keeps
    safe_private_creators: tuple[str, ...] = ()
    #: replace Patient ID / Patient's Name with keyed pseudonyms instead of dummies
    pseudonymize_patient: bool = False
    #: encapsulated PDF/CDA/STL/OBJ and audio waveforms: replace per table, or block
    encapsulated_documents: Literal["replace", "block"] = "block"
    #: days range for the Modified Dates offset (the offset is keyed per patient)
    date_shift_max_days: int = field(default=365, metadata={"min": 1, "max": 36500})


@dataclass(frozen=True)
class DicomLimits:
    """Limits checked before and while parsing untrusted DICOM bytes."""

    max_object_bytes: int = field(default=2 * 1024**3, metadata={"min": 1024})
    #: pydicom recurses per nesting level and fails near 250; real files use < 10
    max_sequence_depth: int = field(default=32, metadata={"min": 1, "max": 200})
    max_elements: int = field(default=1_000_000, metadata={"min": 100})
    #: Deflated Explicit VR Little Endian is inflated at most to this many bytes
    max_inflated_bytes: int = field(default=512 * 1024**2, metadata={"min": 1024})
    #: rows x columns x samples x frames x bytes per sample above this are refused before any
    #: decoder runs (dicom/pixel_cost.py). Cleaning one large frame peaks at 7-9x the decoded
    #: size (measured: 128 MiB decoded, +913 MiB RSS), so 512 MiB keeps a busy worker near
    #: 5 GiB: two workers fit a 2-core, 24 GB host with room for Squid. The largest common images (tomosynthesis, long colour cine) that
    #: need cleaning and exceed it are blocked as limit-exceeded; raise it with [workers]
    #: max_memory_bytes.
    max_pixel_bytes: int = field(default=512 * 1024**2, metadata={"min": 1024})
    #: encapsulated Pixel Data declaring more than this many decoded bytes per stored byte is a
    #: decompression bomb (lossless codecs reach 2-4:1, lossy ones a few hundred); 0 turns it off
    max_decode_ratio: int = field(default=1000, metadata={"min": 0})
    #: pixels that decode to at most this many bytes are exempt from the ratio (a blank frame
    #: compresses beyond any ratio and costs little)
    decode_ratio_floor_bytes: int = field(default=32 * 1024**2, metadata={"min": 0})
