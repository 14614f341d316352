"""Library noise is dropped at its logger, and from logs written before; real warnings stay."""

from __future__ import annotations

import logging

import pytest

from engine.runs import noise

BNB = "bitsandbytes.backends.cpu.ops"
KERNELS = ("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'. Please make sure "
           "you already `pip install kernels` and the kernels >= 0.11.1")


@pytest.fixture
def bnb_logger():
    logger = logging.getLogger(BNB)
    filters = list(logger.filters)
    logger.filters = []  # as a fresh process has it (`workbench` commands run in-process in other tests)
    yield logger
    logger.filters = filters  # the filter is for engine processes, not for this test session


def record(logger: logging.Logger, message: str) -> logging.LogRecord:
    return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, (), None)


def test_the_kernels_message_is_dropped_and_real_warnings_are_kept(bnb_logger):
    assert bnb_logger.filter(record(bnb_logger, KERNELS))  # bitsandbytes logs it on every import
    noise.silence_library_noise()
    assert not bnb_logger.filter(record(bnb_logger, KERNELS))
    assert bnb_logger.filter(record(bnb_logger, "int8 matmul fell back to fp32"))


def test_logs_written_before_are_shown_without_it():
    log = f"start\n{KERNELS}\n{{'loss': 0.5}}{KERNELS}\nend"  # on its own line, and run into a print
    assert noise.without_library_noise(log) == "start\n{'loss': 0.5}\nend"
    assert noise.without_library_noise("plain\nlines\n") == "plain\nlines\n"
