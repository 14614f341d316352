"""How a run folder's engine is started: `python -m engine.train RUN_DIR` for one process, or, with a
distributed backend, `accelerate launch` with a config file written into the run folder:

    RUN_DIR/accelerate.yaml   accelerate's config: the backend, processes, machines and meeting point
    RUN_DIR/deepspeed.json    DeepSpeed's config, for deepspeed-zero2 / deepspeed-zero3 ("auto" values are
                              filled in by transformers from the run's training settings)

The same command, shown in the Train tab and by `workbench train`, is what a user runs on the other
machines of a multi-node run, with ``--machine_rank`` set to each machine's number.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.config import ConfigError, RunConfig
from engine.files import atomic_write, read_yaml_mapping, tail
from engine.runs.folder import RunFolder

ENGINE_MODULE = "engine.train"  # what every rank runs
ZERO_STAGE = {"deepspeed-zero2": 2, "deepspeed-zero3": 3}
# A rank's exit status when it ended only because another rank failed first (it lost the connection,
# or found the run already failed): the launcher's report then points past it to the real cause.
PEER_FAILED_EXIT = 3


def gpu_count() -> int:
    """CUDA devices this machine has. The web UI and the CLI never import torch (seconds, and CUDA has
    no business in them), so there the driver's device files are counted."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if "torch" in sys.modules:
        return sys.modules["torch"].cuda.device_count()
    return len(glob.glob("/dev/nvidia[0-9]*"))


def devices_text() -> str:
    """What a run can use here, as the Train tab says it."""
    gpus = gpu_count()
    cores = os.cpu_count() or 1
    if gpus:
        return f"{gpus} GPU{'s' * (gpus > 1)} and {cores} CPU cores"
    return f"no GPU: {cores} CPU cores (ddp runs CPU processes on the gloo backend)"


def total_processes(cfg: RunConfig) -> int:
    return cfg.distributed.num_processes * cfg.distributed.num_nodes


def check_machine(cfg: RunConfig, gpus: int | None = None) -> None:
    """Refuse, naming the setting, what this machine cannot run (the config itself is valid)."""
    d = cfg.distributed
    gpus = gpu_count() if gpus is None else gpus
    if d.backend == "none":
        return
    if d.backend != "ddp" and not gpus:
        # (accelerate would run fsdp on CPU processes as plain ddp, sharding nothing: better said than done silently)
        raise ConfigError(f"distributed.backend: {d.backend} shards the model across GPUs and this machine has none; "
                          "use ddp (CPU processes on the gloo backend) or none")
    if d.backend.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(f"distributed.backend: {d.backend} needs the deepspeed package, which is not installed: "
                          "`.venv/bin/pip install deepspeed` (it builds against the CUDA toolkit), or use fsdp")
    if gpus and d.num_processes > gpus:
        raise ConfigError(f"distributed.num_processes: {d.num_processes} processes but this machine has {gpus} "
                          f"GPU{'s' * (gpus > 1)}; use at most {gpus} (one per GPU)")


def accelerate_config(cfg: RunConfig, run_dir: Path) -> dict:
    """accelerate's config file for the run's backend (the keys `accelerate config` writes)."""
    d = cfg.distributed
    config = {
        "compute_environment": "LOCAL_MACHINE", "debug": False,
        # MULTI_GPU is accelerate's name for one process per device; with no GPU the ranks run on CPU (gloo)
        "distributed_type": {"ddp": "MULTI_GPU", "fsdp": "FSDP"}.get(d.backend, "DEEPSPEED"),
        "num_processes": total_processes(cfg), "num_machines": d.num_nodes, "machine_rank": d.node_rank,
        # one machine: any free port (0), so that two runs never collide
        "main_process_ip": d.main_address, "main_process_port": d.main_port if d.num_nodes > 1 else 0,
        "same_network": True, "rdzv_backend": "static",
        "gpu_ids": "all", "use_cpu": False, "mixed_precision": "no",  # the run's dtype is set by the trainer
        "downcast_bf16": "no", "enable_cpu_affinity": False,
        "tpu_env": [], "tpu_use_cluster": False, "tpu_use_sudo": False,
    }
    if d.backend == "fsdp":
        config["fsdp_config"] = {
            "fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_cpu_ram_efficient_loading": True, "fsdp_offload_params": False,
            "fsdp_reshard_after_forward": True, "fsdp_state_dict_type": "FULL_STATE_DICT",
            "fsdp_activation_checkpointing": cfg.training.gradient_checkpointing,
        }
    elif d.backend in ZERO_STAGE:
        config["deepspeed_config"] = {"deepspeed_config_file": str(RunFolder(run_dir).deepspeed_file),
                                      "zero3_init_flag": ZERO_STAGE[d.backend] == 3}
    return config


def deepspeed_config(cfg: RunConfig) -> dict:
    """ZeRO stage 2 or 3; "auto" values are taken from the run's TrainingArguments by transformers."""
    stage = ZERO_STAGE[cfg.distributed.backend]
    zero = {"stage": stage, "overlap_comm": True, "contiguous_gradients": True,
            "reduce_bucket_size": "auto", "allgather_bucket_size": 5e8}
    if stage == 3:
        zero.update({"stage3_prefetch_bucket_size": "auto", "stage3_param_persistence_threshold": "auto",
                     "stage3_gather_16bit_weights_on_model_save": True})
    return {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto",
            "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"}, "zero_optimization": zero}


def write_launch_files(cfg: RunConfig, run_dir: Path) -> None:
    """The config files the launch command names, into the run folder (none for one process)."""
    if cfg.distributed.backend == "none":
        return
    run = RunFolder(run_dir)
    atomic_write(run.accelerate_file, yaml.safe_dump(accelerate_config(cfg, run_dir), sort_keys=False))
    if cfg.distributed.backend in ZERO_STAGE:
        atomic_write(run.deepspeed_file, json.dumps(deepspeed_config(cfg), indent=2))


def launch_env(cfg: RunConfig) -> dict[str, str]:
    """Environment for the launch: CPU ranks share the machine's cores (torchrun would give each one
    thread), unless the user set OMP_NUM_THREADS."""
    if cfg.distributed.backend == "none" or "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // cfg.distributed.num_processes))}


def launch_command(cfg: RunConfig, run_dir: Path, shown: bool = False) -> list[str]:
    """The command that trains the run folder, run from the repository root (``shown``: as a user
    types it in the project's environment: `python` and `accelerate` from .venv/bin)."""
    python = "python" if shown else sys.executable
    if cfg.distributed.backend == "none":
        return [python, "-m", ENGINE_MODULE, str(run_dir)]
    accelerate = ["accelerate", "launch"] if shown else [python, "-m", "accelerate.commands.launch"]
    return [*accelerate, "--config_file", str(RunFolder(run_dir).accelerate_file), "-m", ENGINE_MODULE, str(run_dir)]


def shown_command(cfg: RunConfig, run_dir: Path | str) -> str:
    """launch_command as a user types it; for several machines, also what each of the others runs."""
    words = launch_command(cfg, Path(run_dir), shown=True)
    text = shlex.join(words)
    d = cfg.distributed
    if d.num_nodes > 1:
        others = shlex.join([*words[:2], "--machine_rank", "K", *words[2:]])
        text += (f"\n# and on each other machine, K = 1 .. {d.num_nodes - 1}, with the same repository and run folder "
                 f"(node 0 at {d.main_address}:{d.main_port}):\n{others}")
    return text


@dataclass(frozen=True)
class RankFailure:
    """One failure in the launcher's report: the rank, when (to the second), how it ended."""

    rank: int
    time: str
    exitcode: int
    signal: str | None  # "SIGKILL", ... when a signal ended it
    root: bool = False  # the launcher's own pick, the "first observed failure"

    @property
    def consequence(self) -> bool:
        """It ended because another rank failed: it lost its peer (PEER_FAILED_EXIT), or the launcher
        sent it its closing SIGTERM once the first failure was seen."""
        return self.exitcode == PEER_FAILED_EXIT or self.signal == "SIGTERM"

    def describe(self, world_size: int | None) -> str:
        of = f" of {world_size}" if world_size else ""
        if self.signal:
            why = (": the kernel's out-of-memory killer sends it when memory runs out, or someone ran kill -9"
                   if self.signal == "SIGKILL" else "")
            return f"rank {self.rank}{of} was killed by {self.signal} (signal {-self.exitcode}){why}; see engine.log"
        return (f"rank {self.rank}{of} exited with status {self.exitcode} without recording an error; "
                "its output is in engine.log")


# torch's elastic launcher (under `accelerate launch`) ends by printing a ChildFailedError report: an
# entry per failed rank, the first observed failure under "Root Cause". The entry layout is
# torch.distributed.elastic.multiprocessing.errors._FAILURE_FORMAT_TEMPLATE, checked against torch 2.13.
REPORT_ENTRY = re.compile(r"time\s*:\s*(?P<time>\S+)\s*\n\s*host\s*:[^\n]*\n\s*rank\s*:\s*(?P<rank>\d+)[^\n]*\n"
                          r"\s*exitcode\s*:\s*(?P<exitcode>-?\d+)[^\n]*")


def reported_failures(log_text: str) -> list[RankFailure]:
    """The failures of the last launcher report in a log, in the order it lists them ([] if none)."""
    start = log_text.rfind("ChildFailedError")
    if start < 0:
        return []
    root_at = log_text.find("Root Cause", start)
    found = []
    for m in REPORT_ENTRY.finditer(log_text, start):
        code = int(m["exitcode"])
        name = signal.Signals(-code).name if code < 0 and -code in signal.valid_signals() else None
        found.append(RankFailure(int(m["rank"]), m["time"], code, name, root=0 <= root_at < m.start()))
    return found


def first_failure(log_file: Path) -> RankFailure | None:
    """The rank that failed first by the launcher's report at the end of a run's log: the earliest
    failure that is not a consequence of another (ties at the report's one-second resolution go to
    the cause); None without a report."""
    failures = reported_failures(tail(log_file, 200))
    causes = [f for f in failures if not f.consequence] or failures
    return min(causes, key=lambda f: (f.time, not f.root), default=None)


def launched_world_size(run_dir: Path) -> int | None:
    """How many ranks a distributed run folder was launched with (its accelerate.yaml), None if unknown."""
    value = read_yaml_mapping(RunFolder(run_dir).accelerate_file).get("num_processes")
    return value if isinstance(value, int) else None


def launcher_report(run_dir: Path) -> str | None:
    """The error the distributed launcher reported for a run whose ranks all ended without one of them
    recording a final state (a rank killed by a signal cannot): which rank failed first and how. None
    for a one-process run, or when the launcher printed no report (it was killed itself)."""
    run = RunFolder(run_dir)
    if not run.accelerate_file.exists():
        return None
    failure = first_failure(run.log_file)
    return failure.describe(launched_world_size(run_dir)) if failure else None
