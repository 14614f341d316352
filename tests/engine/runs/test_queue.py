"""The run queue: one engine at a time, waiting runs start oldest first, cancel before start."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from engine.config import from_dict
from engine.runs import queue as runqueue
from engine.runs.folder import create_run
from tests.helpers import tiny_config


@pytest.fixture
def queue_env(tmp_path, monkeypatch):
    """A private saves/ and a stand-in launcher that records what it starts (no training here;
    tests/engine/test_train.py runs real engines)."""
    monkeypatch.setenv("WORKBENCH_SAVES", str(tmp_path))
    started = []

    def fake_start(run):
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        run.update_status(pid=proc.pid)
        started.append(run.name)
        return proc

    monkeypatch.setattr(runqueue, "start_engine", fake_start)
    return started


def new_run(name: str):
    return runqueue.enqueue(from_dict({**tiny_config("sft"), "name": name}))


def test_waiting_runs_start_one_at_a_time_in_creation_order(queue_env):
    busy = new_run("busy")
    busy.update_status(state="running", pid=os.getpid())  # this test process: alive
    first, second = new_run("first"), new_run("second")
    assert runqueue.active_run() == busy
    assert runqueue.waiting_runs() == [first, second]
    assert runqueue.start_next() is None and queue_env == []

    busy.update_status(state="completed")
    assert runqueue.start_next() == first and queue_env == [first.name]
    assert runqueue.waiting_runs() == [second]


def test_a_dead_engine_does_not_block_the_queue(queue_env):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    new_run("crashed").update_status(state="running", pid=dead.pid)
    waiting = new_run("next")
    assert runqueue.start_next() == waiting


def test_runs_created_outside_the_queue_are_left_alone(queue_env):
    create_run(from_dict(tiny_config("sft")))  # e.g. a CLI run whose start failed
    assert runqueue.waiting_runs() == [] and runqueue.start_next() is None


def test_cancel_only_a_waiting_run(queue_env):
    waiting = new_run("waiting")
    assert runqueue.cancel(waiting)
    status = waiting.status()
    assert status.state == "cancelled" and status.error == "cancelled before it started"
    assert runqueue.waiting_runs() == [] and runqueue.start_next() is None
    running = new_run("running")
    running.update_status(state="running", pid=os.getpid())
    assert not runqueue.cancel(running)
    assert not runqueue.cancel(waiting)  # already cancelled: this call cancelled nothing


def test_an_engine_that_finds_its_run_cancelled_does_not_train(queue_env):
    """Cancel and the queue's start can cross (the engine starting while Cancel writes): the engine's
    "running" then changes nothing, and it ends without training."""
    from engine import train
    from engine.runs.status import State

    run = new_run("crossed")
    assert runqueue.cancel(run)
    assert train.run(run) == State.CANCELLED and train.exit_code(run, State.CANCELLED) == 0
    status = run.status()
    assert status.state == State.CANCELLED and status.started is None
    assert not run.metrics_file.exists() and run.weights() is None


def test_an_unreadable_status_does_not_block_the_queue(queue_env):
    broken = new_run("broken")
    (broken.path / "status.json").write_text('{"state": "runn')
    waiting = new_run("next")
    assert runqueue.active_run() is None and runqueue.waiting_runs() == [waiting]
    assert runqueue.start_next() == waiting and queue_env == [waiting.name]
    assert (broken.path / "status.json").read_text() == '{"state": "runn'  # left for the user to see


def test_the_worker_serves_its_own_runs_folder_and_ends_with_the_server(queue_env, tmp_path, monkeypatch):
    waiting = new_run("next")
    monkeypatch.setenv("WORKBENCH_SAVES", str(tmp_path / "another"))  # e.g. a later server or test
    serving = iter([True, False])
    runqueue.worker(lambda: next(serving), waiting.path.parent, interval=0)  # returns: the server closed
    assert queue_env == [waiting.name]


def test_concurrent_starts_start_one_run(queue_env, monkeypatch):
    """Start pressed in several tabs at once, beside the queue's worker: one engine starts."""
    started = []

    def slow_start(run):
        time.sleep(0.2)  # the window in which a second Start could see no engine running
        run.update_status(state="running", pid=os.getpid())  # alive: this test process plays the engine
        started.append(run.name)
        return subprocess.Popen([sys.executable, "-c", "pass"])

    monkeypatch.setattr(runqueue, "start_engine", slow_start)
    first, second = new_run("first"), new_run("second")
    threads = [threading.Thread(target=runqueue.start_next) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert started == [first.name] and runqueue.waiting_runs() == [second]


def test_a_run_this_machine_cannot_launch_fails_with_the_reason_and_leaves_the_queue(runs_env, monkeypatch):
    """fsdp shards across GPUs: on a machine without one, the queued run fails at launch, naming the
    setting, and leaves the queue (it is never tried again)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    started = []
    monkeypatch.setattr("engine.runs.process.spawn", lambda command, folder, log, **env: started.append(command))
    refused = runqueue.enqueue(from_dict(tiny_config("sft", distributed={"backend": "fsdp", "num_processes": 2},
                                                     samples={"count": 0})))
    assert runqueue.start_next() is None
    status = refused.status()
    assert status.state == "failed" and status.error.startswith("distributed.backend: fsdp shards the model")
    assert started == [] and not (refused.path / "accelerate.yaml").exists()
    assert runqueue.waiting_runs() == []
