"""`address_matches`: exact addresses and AA wildcard pairs."""

from __future__ import annotations

from collectors.dlt645.codec import WILDCARD, address_matches


def test_exact_and_wildcard_addresses_match() -> None:
    assert address_matches("000103020425", "000103020425")
    assert address_matches("AAAA03020425", "000103020425")
    assert address_matches(WILDCARD, "202401000001")


def test_other_addresses_do_not_match() -> None:
    assert not address_matches("000103020426", "000103020425")
    assert not address_matches("AAAA03020426", "000103020425")
