"""The resource panel reads the host and the running engine."""

from __future__ import annotations

import os

from tests.helpers import make_run
from webui import resources


def test_panel_without_an_engine(runs_env, monkeypatch):
    monkeypatch.setattr(resources, "gpu_memory", lambda: None)
    text = resources.resources_markdown()
    assert "% of" in text and "cores" in text and "RAM" in text and "no GPU" in text
    assert text.endswith("no engine running")


def test_panel_shows_the_running_engine(runs_env):
    run = make_run("sft", "running", pid=os.getpid(), name="live")  # this process stands in for the engine
    assert resources.engine_usage().startswith(f"engine `{run.name}`: ")
    assert "GiB RSS" in resources.resources_markdown()
