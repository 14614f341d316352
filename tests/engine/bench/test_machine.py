"""The machine a benchmark ran on, read without torch."""

from __future__ import annotations

from engine.bench.machine import cpu_info, describe, one_line

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse avx2 avx512f avx512_bf16

processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse avx2 avx512f avx512_bf16
"""


def test_cpu_model_and_flags_come_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO, encoding="utf-8")
    model, flags = cpu_info(path)
    assert model == "AMD EPYC 9R14" and {"avx512_bf16", "avx512f"} <= flags


def test_this_machine_is_described_with_its_library_versions():
    machine = describe()
    assert machine["cores"] >= 1 and machine["versions"]["trl"] and machine["versions"]["torch"]
    line = one_line({**machine, "torch_threads": 2, "device": "cpu"})
    assert "2 torch threads" in line and "no GPU" in line and "trl " in line
