"""engine.runs.status and engine.runs.process: status.json typed, the one liveness rule, one word
(crashed) for a process that vanished, and a bad status.json that breaks nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from engine.runs import health
from engine.runs.process import wait
from engine.runs.status import State, Status, read_status, write_status


def test_status_round_trips_typed_and_keeps_keys_it_does_not_know(tmp_path):
    (tmp_path / "status.json").write_text(json.dumps({"state": "running", "pid": 12, "step": 3, "future_key": [1]}))
    status = read_status(tmp_path)
    assert status.state is State.RUNNING and status.pid == 12 and status.step == 3 and status.max_steps is None
    write_status(tmp_path, step=4)
    data = json.loads((tmp_path / "status.json").read_text())
    assert data["state"] == "running" and data["step"] == 4 and data["future_key"] == [1]
    with pytest.raises(TypeError, match="no field 'stpe'"):
        write_status(tmp_path, stpe=5)


def test_one_liveness_rule_and_one_word_for_a_dead_process(dead_pid):
    alive = Status(state=State.RUNNING, pid=os.getpid())
    assert alive.engine_alive and alive.shown is State.RUNNING
    dead = Status(state=State.RUNNING, pid=dead_pid)
    assert not dead.engine_alive and dead.shown is State.CRASHED
    waiting = Status(state=State.QUEUED, in_queue=True)
    assert waiting.waiting and not waiting.engine_alive and waiting.shown is State.QUEUED
    assert Status(state=State.COMPLETED, pid=dead_pid).shown is State.COMPLETED


def test_a_follower_writes_crashed_when_the_process_died_without_a_final_state(tmp_path):
    write_status(tmp_path, state=State.RUNNING)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    status = wait(tmp_path, proc, interval=0.05)
    assert status.state is State.CRASHED and "without writing a final status" in status.error
    assert read_status(tmp_path).state is State.CRASHED


def test_a_missing_or_broken_status_is_unknown_and_names_the_file(tmp_path):
    assert read_status(tmp_path).state is State.UNKNOWN
    (tmp_path / "status.json").write_text('{"state": "runn')
    status = read_status(tmp_path)
    assert status.state is State.UNKNOWN and str(tmp_path / "status.json") in status.error
    (tmp_path / "status.json").write_bytes(b"\xff\xfe{")
    assert read_status(tmp_path).state is State.UNKNOWN


def test_health_warnings_skip_what_the_error_says_and_read_old_folders():
    w = health.warning(health.NON_FINITE, "loss=nan at step 3: training diverged.", 3)
    other = health.warning(health.COARSE_ACCURACY, "accuracy was exactly 1", 5)
    status = Status(warnings=[w, other], error=w["message"] + " Training stopped; ...")
    assert status.health_warnings() == [other]
    assert status.health_warnings(beside_error=False) == [w, other]
    old = Status.from_dict({"warning": "non-finite values in loss", "step": 2})
    assert old.health_warnings()[0]["message"] == "non-finite values in loss"
    assert Status().health_warnings() == []


@pytest.mark.parametrize("text", ['{"state": "running", "pid": "12"}', '{"pid": 1.5}', '{"pid": true}',
                                  '{"started": "yesterday"}', '{"ended": [5]}', '{"step": null}',
                                  '{"warnings": "none"}'])
def test_a_field_of_the_wrong_type_makes_the_status_unreadable_not_a_crash(tmp_path, text):
    (tmp_path / "status.json").write_text(text)
    status = read_status(tmp_path)
    assert status.state == State.UNKNOWN and status.label == "unreadable: status.json"
    assert "status.json is unreadable" in status.error and "which is not a" in status.error
    assert status.shown == State.UNKNOWN and status.duration() is None and not status.engine_alive


def test_a_zombie_is_not_alive(tmp_path):
    """A killed engine nobody has reaped yet (its parent, the CLI, died too) is dead, not running."""
    from engine.runs.status import is_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not reaped yet
        assert time.time() < deadline
    assert not is_alive(child.pid)
    child.wait()
    assert is_alive(os.getpid())
