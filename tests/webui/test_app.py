"""The assembled app: it builds without torch, serves its page, and trains one tiny run end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

from engine.runs.folder import RunFolder
from tests.helpers import REPO, serve_in_process, tiny_config
from webui import app, run_form
from webui.forms import to_values
from webui.tabs import train


def test_build_app_constructs_without_importing_the_trainers(tmp_path):
    # A fresh interpreter: this test process may already hold torch from other tests.
    code = ("import sys; from webui.app import build_app; demo = build_app(sys.argv[1]); "
            "heavy = [m for m in ('torch', 'trl', 'peft', 'transformers', 'engine.stages') if m in sys.modules]; "
            "assert not heavy, heavy; print(type(demo).__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "Blocks"


def test_form_events_leave_validation_to_the_config(runs_env):
    # Gradio's preprocessing would reject an out-of-range number before the handler, without
    # naming the field; with preprocess off, from_dict's error (naming the key) is what users see.
    demo = app.build_app(runs_env)
    events = {fn.api_name: fn for fn in demo.fns.values()}
    assert events["start"].preprocess is False and events["preview"].preprocess is False
    number = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "learning_rate")
    assert (number.minimum, number.maximum) == (0.0, 1.0)  # the browser still gets the bounds


def test_app_serves_its_page(runs_env):
    demo = app.build_app(runs_env)
    url = serve_in_process(demo)
    try:
        with urllib.request.urlopen(f"{url}/", timeout=30) as response:
            assert response.status == 200
            assert "workbench" in response.read().decode("utf-8", "replace")  # the page embeds its config
        with urllib.request.urlopen(f"{url}/config", timeout=30) as response:
            labels = {c.get("props", {}).get("label") for c in json.load(response)["components"]}
        assert {"learning_rate", "beta", "followed run", "runs to compare"} <= labels
    finally:
        demo.close()
    queue_threads = [t for t in threading.enumerate() if t.name == "run-queue"]
    for thread in queue_threads:  # the closed server's queue thread ends too
        thread.join(timeout=10)
    assert not any(t.is_alive() for t in queue_threads)


def test_start_trains_a_tiny_run_and_the_status_follows_it(saves, tiny_model):
    specs = run_form.form_specs()
    assert "tiny" in dict((s.key, s) for s in specs)["model.name_or_path"].kwargs["choices"]
    started = train.start(specs, *to_values(specs, tiny_config("sft")))
    monitor = started["monitor"]
    name = monitor["value"]
    assert name in monitor["choices"] and "Started" in started["message"]
    seen = train.refresh(name, {})["seen"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # the tab's timer, polled until the run has ended
        shown = train.refresh(name, {})
        if "state: **completed**" in shown["status"] or "state: **failed" in shown["status"]:
            break
        time.sleep(0.5)
    assert "state: **completed**" in shown["status"] and "step 4/4" in shown["status"], \
        shown["status"] + "\n" + shown["log"]
    out = train.refresh(name, seen)
    log = out["log"]
    loss = out[train.CHARTS[0]]["value"].data[0]
    assert loss.name == "loss" and list(loss.x) == [1, 2, 3, 4]
    assert len([r for r in RunFolder(saves / "runs" / name).metrics() if "loss" in r]) == 4
    assert log  # the engine's log tail is shown
    assert os.environ["WORKBENCH_SAVES"] == str(saves)
