"""Tests for engine.data.samples, the generator of the sample datasets shipped in data/."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import DATA, REPO


def test_samples_regenerate_the_shipped_data_byte_for_byte(tmp_path):
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "engine.data.samples", str(out)], cwd=REPO, check=True,
                   capture_output=True)
    shipped = sorted(p.name for p in DATA.iterdir() if p.is_file())
    assert sorted(p.name for p in out.iterdir()) == shipped
    for name in shipped:
        assert (out / name).read_bytes() == (DATA / name).read_bytes(), name


def test_samples_import_nothing_heavy():
    code = ("import sys, engine.data.samples.__main__; "
            "print(sorted(m for m in ('torch', 'datasets', 'transformers', 'engine.data.rows') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
    assert done.stdout.strip() == "[]"
