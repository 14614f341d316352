"""Resume after a crash: SIGKILL at step 29 of 60, then `workbench train --resume` finishes the run at
step 60 in the same folder, with one continuous loss curve equal to an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from engine.cli import main as cli_main
from engine.config import from_dict
from engine.runs import checkpoints
from engine.runs.folder import create_run
from engine.runs.process import start_engine, wait
from tests.helpers import engines_pause_at, kill_when_paused, tiny_config

STEPS = 60


def resumable_config(stage: str = "sft", **sections) -> dict:
    cfg = tiny_config(stage, training={"max_steps": STEPS, "save_steps": 10, "per_device_train_batch_size": 2,
                                       "learning_rate": 1e-3}, samples={"count": 1, "every": 20, "max_new_tokens": 8},
                      **sections)
    return cfg


def kill_at(run, step: int, monkeypatch, tmp_path) -> None:
    """Start the engine and SIGKILL it at ``step``: it pauses itself right after writing the step, so
    the kill lands there on any machine, before the next checkpoint (no poller racing the engine)."""
    for name, value in engines_pause_at(tmp_path / f"pause-{run.name}", step).items():
        monkeypatch.setenv(name, value)
    proc = start_engine(run)
    kill_when_paused(proc.pid)
    proc.wait()
    assert run.status().step == step


def losses(run) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in run.metrics() if "loss" in r}


@pytest.fixture(scope="module")
def uninterrupted(tiny_model):
    run = create_run(from_dict(resumable_config()))
    status = wait(run, start_engine(run), interval=0.1)
    assert status.state == "completed", status.error
    return run


def test_a_killed_run_resumes_to_the_end_with_one_continuous_curve(uninterrupted, capsys, monkeypatch, tmp_path):
    run = create_run(from_dict(resumable_config()))
    kill_at(run, 29, monkeypatch, tmp_path)  # before the checkpoint of step 30
    assert run.status().shown == "crashed"
    assert [c.step for c in checkpoints.all_checkpoints(run)] == [10, 20]  # save_total_limit 2
    logged_before = max(losses(run))
    assert logged_before == 28  # killed after step 29's update, before its metrics line

    assert cli_main(["train", "--resume", run.name]) == 0
    out = capsys.readouterr().out
    assert "resuming from checkpoints/checkpoint-20 (step 20 of 60)" in out
    status = run.status()
    assert status.state == "completed" and status.step == STEPS and status.resume_from == "checkpoints/checkpoint-20"
    curve = losses(run)
    assert sorted(curve) == list(range(1, STEPS + 1))  # each step once: the redone steps replaced, not doubled
    steps = [r["step"] for r in run.metrics() if "loss" in r]
    assert steps == sorted(steps)
    # the same data order, optimizer, scheduler and RNG: the resumed curve is the uninterrupted one
    expected = losses(uninterrupted)
    assert curve == pytest.approx(expected, rel=1e-4, abs=1e-5)
    undone = [json.loads(line) for line in (run.path / "metrics.undone.jsonl").read_text().splitlines()]
    assert {r["step"] for r in undone if "loss" in r} == set(range(21, logged_before + 1))
    wall = [r["wall_time"] for r in run.metrics()]
    assert wall == sorted(wall)  # training time goes on from where it was
    assert sorted({r["step"] for r in run.samples()}) == [0, 15, 20, 30, 40, 45, 60]  # every 20, and the quarters
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    assert "resumed at step 20 of 60" in run.log_file.read_text()


def test_a_partial_checkpoint_is_skipped_and_removed(tiny_model, monkeypatch, tmp_path):
    run = create_run(from_dict(resumable_config()))
    kill_at(run, 29, monkeypatch, tmp_path)
    partial = run.checkpoints_dir / "checkpoint-30"  # a disk that filled up mid-save: no trainer state
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    assert checkpoints.missing_parts(partial) == ["optimizer.pt", "scheduler.pt", "trainer_state.json"]
    assert checkpoints.last_complete(run).step == 20
    chosen = checkpoints.request_resume(run, in_queue=False)
    assert chosen.step == 20 and run.status().state == "queued" and run.status().resume_from.endswith("-20")
    status = wait(run, start_engine(run), interval=0.1)
    assert status.state == "completed" and status.step == STEPS
    assert [c.step for c in checkpoints.all_checkpoints(run)] == [50, 60]


def test_a_stopped_run_resumes_from_the_checkpoint_its_stop_saved(tiny_model):
    """Stop (SIGTERM) saves a checkpoint at the step it stops at; Resume goes on from exactly there."""
    cfg = resumable_config()
    cfg["training"]["save_steps"] = 0  # save_minutes' default: a stop still keeps a checkpoint
    run = create_run(from_dict(cfg))
    proc = start_engine(run)
    while run.status().step < 7:
        assert proc.poll() is None
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    status = wait(run, proc, interval=0.1)
    assert status.state == "stopped"
    stopped_at = status.step
    assert checkpoints.last_complete(run).step == stopped_at
    checkpoints.request_resume(run, in_queue=False)
    status = wait(run, start_engine(run), interval=0.1)
    assert status.state == "completed" and sorted(losses(run)) == list(range(1, STEPS + 1))


def test_dpo_on_an_sft_adapter_resumes(tiny_model, monkeypatch, tmp_path):
    """DPO keeps its reference as a second adapter: both survive the checkpoint round trip."""
    sft = create_run(from_dict(tiny_config("sft")))
    assert wait(sft, start_engine(sft), interval=0.1).state == "completed"
    cfg = resumable_config("dpo", init_from=str(sft.path))
    cfg["training"]["max_steps"] = 12
    cfg["training"]["save_steps"] = 4
    run = create_run(from_dict(cfg))
    kill_at(run, 6, monkeypatch, tmp_path)
    checkpoints.request_resume(run, in_queue=False)
    status = wait(run, start_engine(run), interval=0.1)
    assert status.state == "completed" and status.step == 12, status.error
    records = [r for r in run.metrics() if "loss" in r]
    assert [r["step"] for r in records] == list(range(1, 13))
    assert all("rewards/margins" in r for r in records)


@pytest.mark.parametrize("state", ["completed", "running"])
def test_resume_refuses_a_run_that_is_not_failed_stopped_or_crashed(runs_env, state):
    run = create_run(from_dict(tiny_config("sft")))
    run.update_status(state=state, pid=os.getpid())
    with pytest.raises(ValueError, match="still running" if state == "running" else "only a failed, stopped"):
        checkpoints.request_resume(run, in_queue=False)


def test_resume_without_a_checkpoint_says_what_to_do(runs_env, dead_pid, capsys):
    run = create_run(from_dict(tiny_config("sft")))
    run.update_status(state="running", pid=dead_pid)  # crashed before its first checkpoint
    (run.checkpoints_dir / "checkpoint-5").mkdir(parents=True)
    assert cli_main(["train", "--resume", str(run.path)]) == 2
    err = capsys.readouterr().err
    assert "saved no complete checkpoint" in err and "checkpoint-5 incomplete" in err and "save_minutes" in err
    assert run.status().state == "running"  # nothing written


def test_an_unreadable_status_does_not_block_resume(runs_env):
    run = create_run(from_dict(tiny_config("sft")))
    folder = run.checkpoints_dir / "checkpoint-3"
    folder.mkdir(parents=True)
    for name in ("optimizer.pt", "scheduler.pt", "adapter_model.safetensors"):
        (folder / name).write_bytes(b"x")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    (run.path / "status.json").write_text('{"state": "runn')
    assert checkpoints.request_resume(run, in_queue=True).step == 3
    assert (run.path / "status.json.unreadable").read_text() == '{"state": "runn'
    assert run.status().waiting


def test_ppo_resumes_with_its_value_head_optimizer_and_kl_state(tiny_model, monkeypatch, tmp_path):
    """PPO's own loop writes the same checkpoint files (plus the value head and the KL state), so a
    killed PPO run resumes too, and its curve is the uninterrupted one."""
    sft = create_run(from_dict(tiny_config("sft")))
    rm = create_run(from_dict(tiny_config("rm")))
    for parent in (sft, rm):
        assert wait(parent, start_engine(parent), interval=0.1).state == "completed"
    cfg = tiny_config("ppo", init_from=str(sft.path), training={"max_steps": 6, "save_steps": 2},
                      ppo={"reward_run": str(rm.path), "rollout_batch_size": 4, "max_new_tokens": 8,
                           "adaptive_kl": True}, samples={"count": 0})
    whole = create_run(from_dict(cfg))
    assert wait(whole, start_engine(whole), interval=0.1).state == "completed"
    run = create_run(from_dict(cfg))
    kill_at(run, 3, monkeypatch, tmp_path)  # before the checkpoint of step 4
    assert checkpoints.request_resume(run, in_queue=False).step == 2
    status = wait(run, start_engine(run), interval=0.1)
    assert status.state == "completed" and status.step == 6, status.error
    assert sorted(losses(run)) == list(range(1, 7))
    key = "objective/kl_coef"
    assert [r[key] for r in run.metrics() if key in r] == pytest.approx([r[key] for r in whole.metrics() if key in r])
    assert losses(run) == pytest.approx(losses(whole), rel=1e-4, abs=1e-5)
    assert (run.adapter_dir / "value_head.safetensors").is_file()


def test_a_full_disk_at_a_checkpoint_fails_the_run_and_resume_skips_the_partial_one(tiny_model, monkeypatch):
    """ENOSPC while checkpoint-30's optimizer state is written: the run fails naming the error, the
    half-written checkpoint-30 is skipped, and Resume goes on from checkpoint-20."""
    import errno

    import torch

    from engine.train import run as train_in_process

    real = torch.save

    def disk_full_at_30(obj, path, *args, **kwargs):  # the Trainer writes optimizer.pt with torch.save
        if str(path).endswith("checkpoint-30/optimizer.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_30)
    run = create_run(from_dict(resumable_config()))
    assert train_in_process(run) == "failed"
    assert "No space left on device" in run.status().error
    assert checkpoints.missing_parts(run.checkpoints_dir / "checkpoint-30")[:1] == ["optimizer.pt"]
    monkeypatch.undo()
    assert checkpoints.request_resume(run, in_queue=False).step == 20
    status = wait(run, start_engine(run), interval=0.1)
    assert status.state == "completed" and sorted(losses(run)) == list(range(1, STEPS + 1))


def test_resume_takes_no_config_and_no_overrides(runs_env, capsys):
    run = create_run(from_dict(tiny_config("sft")))
    assert cli_main(["train", "examples/smoke/sft.yaml", "--resume", run.name]) == 2
    assert "--resume continues a run with its own config.yaml" in capsys.readouterr().err
    assert cli_main(["train", "--resume", "no-such-run"]) == 2
    assert "run 'no-such-run' not found" in capsys.readouterr().err
