"""engine.runs.launch and the distributed section of the config: the command and files a run folder
gets for each backend, and the settings refused, each naming the setting to change."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from engine.config import ConfigError, dump_yaml, from_dict, load_yaml
from engine.runs import launch
from engine.runs.process import engine_ranks, terminate
from tests.helpers import tiny_config


def config(stage: str = "sft", **distributed):
    return from_dict(tiny_config(stage, distributed=distributed, samples={"count": 0}))


def test_a_run_is_one_process_by_default_and_the_yaml_holds_the_section():
    cfg = from_dict(tiny_config("sft"))
    assert cfg.distributed.backend == "none" and cfg.distributed.num_processes == 1
    assert yaml.safe_load(dump_yaml(cfg))["distributed"] == {
        "backend": "none", "num_processes": 1, "num_nodes": 1, "node_rank": 0, "main_address": "127.0.0.1",
        "main_port": 29500}
    assert launch.launch_command(cfg, Path("/runs/r")) == [sys.executable, "-m", "engine.train", "/runs/r"]


@pytest.mark.parametrize(("settings", "named"), [
    ({"distributed.num_processes": 2}, "distributed.num_processes: 2 needs a distributed.backend"),
    ({"distributed.num_nodes": 2}, "distributed.num_nodes: 2 needs a distributed.backend"),
    ({"distributed.backend": "ddp", "distributed.num_nodes": 2, "distributed.node_rank": 2},
     "distributed.node_rank: 2 with 2 node(s)"),
    ({"stage": "ppo", "distributed.backend": "ddp"}, "distributed.backend: ppo cannot run with ddp"),
    ({"distributed.backend": "fsdp"}, "samples.count: sample answers are written by rank 0 alone"),
    ({"distributed.backend": "deepspeed-zero3", "samples.count": 0, "model.finetuning_type": "qlora-4bit"},
     "model.finetuning_type: qlora-4bit"),
    ({"distributed.backend": "horovod"}, "distributed.backend: 'horovod' is not one of none, ddp, fsdp"),
])
def test_settings_that_cannot_work_anywhere_are_refused_by_name(settings, named):
    with pytest.raises(ConfigError) as e:
        load_yaml(None, [f"{k}={v}" for k, v in settings.items()])
    assert str(e.value).startswith(named), e.value


@pytest.mark.parametrize(("cfg", "gpus", "named"), [
    (config(backend="fsdp"), 0, "distributed.backend: fsdp shards the model across GPUs and this machine has none"),
    (config(backend="deepspeed-zero2"), 0, "distributed.backend: deepspeed-zero2 shards the model across GPUs"),
    (config(backend="ddp", num_processes=4), 2, "distributed.num_processes: 4 processes but this machine has 2 GPUs"),
])
def test_what_this_machine_cannot_run_is_refused_by_name(cfg, gpus, named):
    with pytest.raises(ConfigError) as e:
        launch.check_machine(cfg, gpus=gpus)
    assert str(e.value).startswith(named), e.value


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="deepspeed is installed here")
def test_deepspeed_without_the_package_says_how_to_install_it():
    with pytest.raises(ConfigError, match=r"needs the deepspeed package.*pip install deepspeed"):
        launch.check_machine(config(backend="deepspeed-zero3"), gpus=8)


def test_ddp_runs_on_cpu_processes_any_number():
    launch.check_machine(config(backend="ddp", num_processes=3), gpus=0)


def test_ddp_launch_files_and_command(tmp_path):
    cfg = config(backend="ddp", num_processes=2)
    launch.write_launch_files(cfg, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accelerate.yaml"]
    written = yaml.safe_load((tmp_path / "accelerate.yaml").read_text())
    assert written["distributed_type"] == "MULTI_GPU" and written["num_processes"] == 2
    assert written["num_machines"] == 1 and written["machine_rank"] == 0
    assert written["main_process_port"] == 0  # one machine: any free port
    assert launch.launch_command(cfg, tmp_path) == [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "accelerate.yaml"),
        "-m", "engine.train", str(tmp_path)]
    assert launch.shown_command(cfg, "saves/runs/r") == (
        "accelerate launch --config_file saves/runs/r/accelerate.yaml -m engine.train saves/runs/r")


def test_several_machines_count_every_process_and_meet_at_node_0(tmp_path):
    cfg = config(backend="ddp", num_processes=4, num_nodes=2, node_rank=0, main_address="10.0.0.5",
                 main_port=29600)
    written = launch.accelerate_config(cfg, tmp_path)
    assert written["num_processes"] == 8 and written["num_machines"] == 2
    assert (written["main_process_ip"], written["main_process_port"]) == ("10.0.0.5", 29600)
    shown = launch.shown_command(cfg, "saves/runs/r")
    assert "K = 1 .. 1" in shown and "10.0.0.5:29600" in shown
    assert shown.splitlines()[-1] == ("accelerate launch --machine_rank K --config_file saves/runs/r/accelerate.yaml "
                                      "-m engine.train saves/runs/r")


def test_zero3_writes_a_deepspeed_config_the_accelerate_config_names(tmp_path):
    cfg = config(backend="deepspeed-zero3", num_processes=2)
    launch.write_launch_files(cfg, tmp_path)
    written = yaml.safe_load((tmp_path / "accelerate.yaml").read_text())
    assert written["distributed_type"] == "DEEPSPEED"
    assert written["deepspeed_config"] == {"deepspeed_config_file": str(tmp_path / "deepspeed.json"),
                                           "zero3_init_flag": True}
    ds = json.loads((tmp_path / "deepspeed.json").read_text())
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert ds["gradient_accumulation_steps"] == "auto"  # transformers fills it from training.*
    zero2 = launch.deepspeed_config(config(backend="deepspeed-zero2", num_processes=2))
    assert zero2["zero_optimization"]["stage"] == 2


def test_fsdp_config_wraps_the_transformer_blocks(tmp_path):
    written = launch.accelerate_config(config(backend="fsdp", num_processes=2), tmp_path)
    assert written["distributed_type"] == "FSDP"
    assert written["fsdp_config"]["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert written["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # the saved adapter is whole


def test_gpu_count_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,3")
    assert launch.gpu_count() == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert launch.gpu_count() == 0
    assert launch.devices_text().startswith("no GPU")


def test_stop_signals_the_engine_ranks_under_a_launcher_and_the_process_itself_otherwise(tmp_path):
    """A stand-in launcher whose two children run `python -m engine.train` (as torch's launcher's ranks
    do): a stand-in module of that name in the launcher's working folder. Each child says it is ready
    once its SIGTERM handler is in place (a file named by its pid): signalled before that, on a loaded
    machine, it would die of the signal instead."""
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "train.py").write_text(
        "import os, pathlib, signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "pathlib.Path(f'ready-{os.getpid()}').touch()\ntime.sleep(60)\n")
    launcher = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys\n"
        "kids = [subprocess.Popen([sys.executable, '-m', 'engine.train']) for _ in range(2)]\n"
        "print(sum(k.wait() for k in kids), flush=True)\n")], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.time() + 60
        while len(list(tmp_path.glob("ready-*"))) < 2:
            assert time.time() < deadline and launcher.poll() is None, "the stand-in ranks never got ready"
            time.sleep(0.05)
        ranks = engine_ranks(launcher.pid)
        assert sorted(ranks) == sorted(int(p.name.removeprefix("ready-")) for p in tmp_path.glob("ready-*"))
        assert launcher.pid not in ranks
        assert terminate(launcher.pid)
        out, _ = launcher.communicate(timeout=30)
        assert out.strip() == "0"  # both ranks ended on their SIGTERM handler; the launcher was not signalled
        assert launcher.returncode == 0
    finally:
        launcher.kill()
    lone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert engine_ranks(lone.pid) == [lone.pid] and terminate(lone.pid)
    assert lone.wait(timeout=30) == -15


def report(*entries: tuple[str, int, str], root: int = 0) -> str:
    """The end of engine.log after torch's launcher ended a run: its ChildFailedError report, with
    entries (time, rank, exitcode text); ``root`` is the one listed as the first observed failure."""
    def entry(i, when, rank, code):
        return (f"[{i}]:\n  time      : 2026-12-07_{when}\n  host      : localhost\n"
                f"  rank      : {rank} (local_rank: {rank})\n  exitcode  : {code}\n  error_file: <N/A>\n"
                f"  traceback : Signal 9 (SIGKILL) received by PID 4180\n")
    others = [entry(i + 1, *e) for i, e in enumerate(entries) if i != root]
    return ("Traceback (most recent call last):\n  ...\n"
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
            "======\nengine.train FAILED\n------\nFailures:\n" + "".join(others) + "------\n"
            "Root Cause (first observed failure):\n" + entry(0, *entries[root]) + "======\n")


@pytest.mark.parametrize(("entries", "root", "first"), [
    # rank 1 killed; rank 0 got the launcher's closing SIGTERM: the launcher's pick is right
    ([("12:56:20", 1, "-9 (pid: 4180)  (SIGKILL)"), ("12:56:20", 0, "-15 (pid: 4179)  (SIGTERM)")], 0, (1, "SIGKILL")),
    # rank 0 exited first (status 3: it lost its peer) in the same second: the cause is rank 1 all the same
    ([("12:56:20", 0, "3 (pid: 4179) "), ("12:56:20", 1, "-9 (pid: 4180)  (SIGKILL)")], 0, (1, "SIGKILL")),
    # rank 1 exited with status 1; rank 0 was killed by the launcher 30 s later
    ([("12:56:58", 0, "-9 (pid: 4210)  (SIGKILL)"), ("12:56:28", 1, "1 (pid: 4211) ")], 1, (1, None)),
])
def test_the_launchers_report_names_the_rank_that_failed_first(tmp_path, entries, root, first):
    log = tmp_path / "engine.log"
    log.write_text("2026-12-07 12:56:10,000 INFO engine [rank 0]: stage sft\n" + report(*entries, root=root))
    failure = launch.first_failure(log)
    assert (failure.rank, failure.signal) == first


def test_a_distributed_run_is_settled_from_the_launchers_report_else_crashed(tmp_path):
    from engine.runs.process import settle
    from engine.runs.status import State, read_status, write_status

    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        write_status(folder, state=State.RUNNING)
        (folder / "engine.log").write_text(report(("12:56:20", 1, "-9 (pid: 4180)  (SIGKILL)")))
    (two / "accelerate.yaml").write_text(yaml.safe_dump({"num_processes": 2}))
    assert settle(one).state == State.CRASHED  # one process: no launcher, no report to use
    status = settle(two)
    assert status.state == State.FAILED and read_status(two) == status
    assert status.error.startswith("rank 1 of 2 was killed by SIGKILL (signal 9): the kernel's out-of-memory killer")
    (two / "engine.log").write_text("the launcher itself was killed: no report\n")
    write_status(two, reopen=True, state=State.RUNNING)
    assert settle(two).state == State.CRASHED
