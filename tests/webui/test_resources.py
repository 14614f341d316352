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


def test_panel_shows_the_followed_runs_engine_first(runs_env):
    """Two live engines (a run started from a terminal beside the queue's): the line names the one
    whose status is shown beside it, not whichever the queue finds first."""
    older = make_run("sft", "running", pid=os.getpid(), name="older", stamp="20250101-000001")
    newer = make_run("sft", "running", pid=os.getpid(), name="newer", stamp="20250101-000002")
    assert f"engine `{older.name}`: " in resources.resources_markdown(older)
    assert f"engine `{newer.name}`" in resources.resources_markdown()  # nothing followed: the queue's pick
    older.update_status(state="completed", pid=None)
    assert f"engine `{newer.name}`" in resources.resources_markdown(older)  # a finished run: the one running
