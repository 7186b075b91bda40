"""Modbus value decoding under hypothesis: any registers a meter may answer decode to finite
values of the block's fields or raise a `DecodeError` (never anything else), for every
shipped register map."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.modbus.errors import DecodeError, NonFiniteValueError
from collectors.modbus.register_map import Block, list_models, load_model, plan_blocks
from collectors.modbus.values import decode_block

QUICK = settings(max_examples=200, deadline=None, database=None)
SOAK = settings(max_examples=5_000, deadline=None, database=None)

BLOCKS: list[Block] = [block for name in list_models() for block in plan_blocks(load_model(name))]
words = st.integers(0, 0xFFFF)
any_words = st.integers(-(2**20), 2**20)


def _check(block: Block, registers: list[int]) -> None:
    fields = {p.field for p in block.points}
    try:
        values = decode_block(block, registers)
    except NonFiniteValueError as exc:  # the good fields kept, the bad ones named
        assert set(exc.values) | set(exc.problems) == fields
        assert all(math.isfinite(v) for v in exc.values.values())
        return
    except DecodeError:
        assert len(registers) != block.count or any(not 0 <= r <= 0xFFFF for r in registers)
        return
    assert set(values) == fields
    assert all(math.isfinite(v) for v in values.values())


@st.composite
def block_and_registers(draw: st.DrawFn, *, exact: bool) -> tuple[Block, list[int]]:
    block = draw(st.sampled_from(BLOCKS))
    if exact:
        return block, draw(st.lists(words, min_size=block.count, max_size=block.count))
    return block, draw(st.lists(any_words, max_size=block.count + 3))


def test_there_are_blocks_to_fuzz() -> None:
    assert len(BLOCKS) >= 4


@QUICK
@given(block_and_registers(exact=True))
def test_any_answer_of_the_right_length_decodes_or_is_a_decode_problem(
    drawn: tuple[Block, list[int]],
) -> None:
    _check(*drawn)


@QUICK
@given(block_and_registers(exact=False))
def test_answers_of_any_length_and_range_never_crash(drawn: tuple[Block, list[int]]) -> None:
    _check(*drawn)


@pytest.mark.slow
@SOAK
@given(st.one_of(block_and_registers(exact=True), block_and_registers(exact=False)))
def test_modbus_decoding_soak(drawn: tuple[Block, list[int]]) -> None:
    _check(*drawn)
