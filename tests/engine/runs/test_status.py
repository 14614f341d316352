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
from tests.helpers import REPO


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


def test_a_final_state_is_final_and_the_first_failure_stays(tmp_path):
    write_status(tmp_path, state=State.RUNNING, pid=5)
    write_status(tmp_path, state=State.FAILED, ended=10.0, error="rank 1 of 2: OSError: no data")
    late = write_status(tmp_path, state=State.RUNNING, started=11.0, error=None)  # a rank starting late
    assert late.state is State.FAILED and late.error == "rank 1 of 2: OSError: no data" and late.started is None
    second = write_status(tmp_path, state=State.FAILED, ended=12.0, error="rank 0 of 2: lost its peer")
    assert second.error == "rank 1 of 2: OSError: no data" and second.ended == 10.0
    assert write_status(tmp_path, step=3).step == 3  # fields that do not say how it ended still update
    for settled in (State.COMPLETED, State.STOPPED, State.CANCELLED):
        folder = tmp_path / settled.value
        folder.mkdir()
        write_status(folder, state=settled)
        for later in State:
            assert write_status(folder, state=later, error="late").state is settled, (settled, later)
    assert read_status(tmp_path).state is State.FAILED


def test_only_a_reopen_changes_a_final_state_and_crashed_may_still_learn_its_error(tmp_path):
    write_status(tmp_path, state=State.FAILED, error="boom")
    reopened = write_status(tmp_path, reopen=True, state=State.QUEUED, error=None)
    assert reopened.state is State.QUEUED and reopened.error is None
    write_status(tmp_path, state=State.CRASHED, error="the process exited without writing a final status")
    assert write_status(tmp_path, state=State.RUNNING).state is State.CRASHED
    learnt = write_status(tmp_path, state=State.FAILED, error="rank 1 of 2 was killed by SIGKILL (signal 9)")
    assert learnt.state is State.FAILED and learnt.error.startswith("rank 1 of 2 was killed")
    assert write_status(tmp_path, state=State.CRASHED, error="later guess").error.startswith("rank 1 of 2")


def test_only_if_checks_and_writes_with_no_other_writer_between(tmp_path):
    write_status(tmp_path, state=State.QUEUED, in_queue=True)
    not_now = write_status(tmp_path, only_if=lambda s: s.state is State.RUNNING, state=State.CANCELLED)
    assert not_now.state is State.QUEUED
    assert write_status(tmp_path, only_if=lambda s: s.waiting, state=State.CANCELLED).state is State.CANCELLED


WRITER = """import sys
from engine.runs.status import write_status
folder, field = sys.argv[1], sys.argv[2]
for i in range(1, 301):
    write_status(folder, **{field: i})
"""


def test_writers_in_several_processes_lose_no_update(tmp_path):
    """Three processes each count their own field up to 300 while this one watches the file: every
    read-modify-write holds the folder's lock, so no writer ever puts back another's older value (without
    the lock a writer that read before another's write undoes it, and a count goes backwards)."""
    write_status(tmp_path, state=State.RUNNING)
    fields = ("step", "max_steps", "elapsed")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), field], cwd=REPO) for field in fields]
    seen = dict.fromkeys(fields, 0)
    while any(p.poll() is None for p in procs):
        status = read_status(tmp_path)
        for field in fields:
            value = getattr(status, field) or 0
            assert value >= seen[field], f"{field} went back from {seen[field]} to {value}: a lost update"
            seen[field] = value
    assert [p.wait() for p in procs] == [0, 0, 0]
    status = read_status(tmp_path)
    assert (status.step, status.max_steps, status.elapsed) == (300, 300, 300)
    assert not list(tmp_path.glob(".status.json.*"))  # no temp file left behind
