"""`dtype: auto` on a CPU follows a bf16 / float32 matrix-product measurement, made once per machine."""

from __future__ import annotations

import json

import pytest
import torch

from engine.models import cpu_dtype
from engine.models.loader import compute_dtype
from engine.paths import cpu_dtype_file


@pytest.fixture
def measured(runs_env, monkeypatch):
    """A stand-in measurement (the real one is timing-dependent) that counts its calls."""
    calls = []

    def measure(speedup):
        monkeypatch.setattr(cpu_dtype, "measure_bf16_speedup", lambda: calls.append(speedup) or speedup)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(cpu_dtype.CPU_DTYPE_ENV, raising=False)  # pytest --cpu-dtype sets it
    return measure, calls


@pytest.mark.parametrize("speedup, dtype", [(10.0, torch.bfloat16), (5.0, torch.bfloat16), (3.0, torch.float32),
                                            (2.2, torch.float32), (0.03, torch.float32)])
def test_auto_picks_bf16_only_where_it_measured_fast_enough(measured, speedup, dtype):
    measure, _ = measured
    measure(speedup)
    assert compute_dtype("auto") == dtype
    assert compute_dtype("float32") == torch.float32 and compute_dtype("bfloat16") == torch.bfloat16


def test_the_measurement_runs_once_per_machine_and_is_kept(measured):
    measure, calls = measured
    measure(10.0)
    assert compute_dtype() == torch.bfloat16 and compute_dtype() == torch.bfloat16 and calls == [10.0]
    saved = json.loads(cpu_dtype_file().read_text(encoding="utf-8"))
    assert saved == {cpu_dtype.machine_key(): 10.0}


def test_a_damaged_record_is_measured_again(measured):
    measure, calls = measured
    cpu_dtype_file().parent.mkdir(parents=True)
    cpu_dtype_file().write_text("{not json", encoding="utf-8")
    measure(2.0)
    assert compute_dtype() == torch.float32 and calls == [2.0]
    assert json.loads(cpu_dtype_file().read_text(encoding="utf-8")) == {cpu_dtype.machine_key(): 2.0}


def test_the_real_measurement_returns_a_ratio():
    assert cpu_dtype.measure_bf16_speedup() > 0


@pytest.mark.parametrize("chosen, dtype", [("bfloat16", torch.bfloat16), ("float32", torch.float32)])
def test_the_environment_sets_auto_without_measuring(measured, monkeypatch, chosen, dtype):
    measure, calls = measured
    measure(10.0 if dtype == torch.float32 else 1.0)  # the opposite answer, if it were measured
    monkeypatch.setenv(cpu_dtype.CPU_DTYPE_ENV, chosen)
    assert compute_dtype() == dtype and calls == []
    assert not cpu_dtype_file().exists()


def test_an_unknown_dtype_in_the_environment_names_the_variable(measured, monkeypatch):
    monkeypatch.setenv(cpu_dtype.CPU_DTYPE_ENV, "fp8")
    with pytest.raises(ValueError, match="WORKBENCH_CPU_DTYPE='fp8': set it to one of bfloat16, float32"):
        compute_dtype()


def test_the_reason_says_what_was_measured_or_set(measured, monkeypatch):
    measure, _ = measured
    measure(2.345)
    assert cpu_dtype.cpu_dtype_and_reason() == (
        torch.float32, "bf16 matrix products measured 2.35x float32 on this CPU; auto takes bf16 from 5x "
                       "(model.dtype overrides it)")
    monkeypatch.setenv(cpu_dtype.CPU_DTYPE_ENV, "bfloat16")
    assert cpu_dtype.cpu_dtype_and_reason() == (torch.bfloat16, "set by the environment variable WORKBENCH_CPU_DTYPE")
