"""Header values -> deny tokens, and tolerant matching of OCR words against them."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from icapdlp.pixels.denylist import build_deny_list


@pytest.fixture
def deny():
    ds = Dataset()
    ds.PatientName = "GARCIA^MARIA^ELENA^DR^"
    ds.PatientID = "12345678"
    ds.PatientBirthDate = "19610304"
    ds.AccessionNumber = "A7"  # too short to be matched on its own
    ds.InstitutionName = "Springfield General Hospital"
    ds.StationName = "USROOM3"
    item = Dataset()
    item.PerformingPhysicianName = "Okafor^Chidi"
    item.ScheduledProcedureStepStartDate = "20240115"
    ds.ScheduledProcedureStepSequence = Sequence([item])
    return build_deny_list(ds)


@pytest.mark.parametrize("text", ["19610304", "1961-03-04", "04/03/1961", "03/04/1961", "04.03.1961",
                                  "04-Mar-1961", "04-MAR-1961"])
def test_birth_date_in_every_rendering(deny, text):
    assert deny.match(text) == "date"


@pytest.mark.parametrize("text", ["GARCIA", "garcia,", "Maria", "ELENA", "GARCIA^MARIA", "MARIAGARCIA",
                                  "Garcla", "GARC1A"])
def test_names_in_any_order_case_and_one_ocr_error(deny, text):
    assert deny.match(text) == "person-name"


def test_nested_sequences_are_searched(deny):
    assert deny.match("Okafor") == "person-name"
    assert deny.match("2024-01-15") == "date"


def test_ids_institution_station(deny):
    assert deny.match("12345678") == "identifier"
    assert deny.match("1234567B") == "identifier"  # one OCR error in 8 characters
    assert deny.match("Springfield") == "institution"
    assert deny.match("ringfield") == "institution"  # a long enough piece of the token
    assert deny.match("USROOM3") == "institution"


@pytest.mark.parametrize("text", ["DR", "A7", "GAMMA", "12395699", "kVp", "Clinic", "1961", "Lopez"])
def test_unrelated_or_too_far_words_do_not_match(deny, text):
    assert deny.match(text) is None


def test_two_errors_allowed_only_for_long_tokens(deny):
    assert deny.match("SPRINGFIFLO") == "institution"  # 11 chars, 2 errors
    assert deny.match("GXRCIX") is None  # 6 chars, 2 errors


def test_split_words_are_joined_for_whole_token_matches(deny):
    assert deny.joined_distance(["04", "/", "03", "/", "1961"])[0] == "date"
    assert deny.joined_distance(["1234", "5678"])[0] == "identifier"
    assert deny.joined_distance(["kVp", "120"]) is None


def test_empty_header_gives_empty_list():
    assert not build_deny_list(Dataset())
