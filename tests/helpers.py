"""Plain helpers the tests share (fixtures live in the conftest.py files): configs for
seconds-long runs on the tiny model, and run folders made by hand, without training."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import torch

from engine.config import from_dict
from engine.models.loader import causal_lm, tokenizer_files
from engine.runs.folder import RunFolder, create_run
from engine.runs.status import State

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
# Data files in the layouts users bring, one per layout engine.data.layouts detects.
LAYOUT_FIXTURES = REPO / "tests" / "fixtures" / "datasets"

# Answers to "How do I bake a cake?" as a numbered-list DPO run sees them: the steps as one paragraph
# (the model at step 0), as a numbered list (what the pairs prefer) and looping (lr 3e-4 made that).
STEPS = ("Preheat the oven to 180 C.", "Mix the flour, sugar and eggs in a bowl.", "Pour the batter into a tin.",
         "Bake for 35 minutes, then let it cool.")
PARAGRAPH = " ".join(STEPS)
GOOD = "\n".join(f"{i}. {step}" for i, step in enumerate(STEPS, 1))
LOOP = "1. " * 60


def tiny_config(stage: str, **sections) -> dict:
    """A config mapping for a seconds-long run on the tiny model and the shipped SQL data."""
    data = {"dataset": "sql_sft" if stage == "sft" else "sql_dpo", "max_samples": 32, "cutoff_len": 192,
            "dataset_dir": str(DATA)}
    cfg = {"stage": stage, "name": "test", "model": {"name_or_path": "tiny"},
           "data": data,
           "training": {"max_steps": 4, "logging_steps": 1, "per_device_train_batch_size": 4,
                        "gradient_accumulation_steps": 1, "learning_rate": 1e-3, "warmup_ratio": 0.0}}
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values} if isinstance(values, dict) else values
    return cfg


def make_weight_run(root: Path, model_dir: Path, stage: str = "sft", seed: int = 0, full: bool = False,
                    init_from: RunFolder | None = None, model_name: str = "tiny", **lora) -> RunFolder:
    """A completed run folder whose adapter/ (random LoRA, B != 0 so it changes the answers) or
    model/ (perturbed weights) is made directly with peft, without training. ``lora``: peft
    LoraConfig settings over the default r=4, alpha=8 on all linear layers."""
    from peft import LoraConfig, get_peft_model

    cfg = tiny_config(stage, model={"name_or_path": model_name, "finetuning_type": "full" if full else "lora"})
    if init_from is not None:
        cfg["init_from"] = str(init_from)
    run = create_run(from_dict({**cfg, "name": f"w{seed}"}), root=root)
    model = causal_lm(model_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if full:
            for p in model.parameters():
                p.data += 0.05 * torch.randn_like(p)
            out = run.model_dir
        else:
            settings = {"r": 4, "lora_alpha": 8, "target_modules": "all-linear", **lora}
            model = get_peft_model(model, LoraConfig(init_lora_weights=False, **settings))
            out = run.adapter_dir
    model.save_pretrained(out)
    tokenizer_files(model_dir).save_pretrained(out)
    run.update_status(state=State.COMPLETED, step=4, max_steps=4)
    return run


def make_run(stage: str = "sft", state: str = "completed", metrics: list[dict] = (), name: str = "test",
             log: str = "", stamp: str | None = None, **status) -> RunFolder:
    """A run folder as the engine leaves it, without training: config, status, metrics, log.

    ``stamp`` renames the folder to ``<stamp>-<stage>-<name>``: folders are ordered by name, and
    runs made within one second would otherwise order by stage, not by age.
    """
    run = create_run(from_dict({**tiny_config(stage), "name": name}))
    if stamp:
        run = RunFolder(run.path.rename(run.path.with_name(f"{stamp}-{stage}-{name}")))
    now = time.time()
    run.update_status(**{"state": state, "pid": None, "started": now - 90,
                         "ended": now if State(state).final else None, "step": 4, "max_steps": 4, **status})
    for record in metrics:
        run.append_metrics(record)
    if log:
        run.log_file.write_text(log, encoding="utf-8")
    return run


def dpo_metrics() -> list[dict]:
    """Two train lines and one eval line with TRL's DPO keys."""
    lines = []
    for step in (1, 2):
        lines.append({"step": step, "epoch": step / 4, "loss": 0.7 - 0.1 * step, "learning_rate": 1e-3,
                      "grad_norm": 1.5, "rewards/chosen": 0.01 * step, "rewards/rejected": -0.02 * step,
                      "rewards/accuracies": 0.5 + 0.25 * step, "rewards/margins": 0.03 * step,
                      "logps/chosen": -40.0, "logps/rejected": -45.0, "wall_time": step * 1.0,
                      "tokens_per_second": 100.0, "memory_rss_mb": 500.0})
    lines.append({"step": 2, "epoch": 0.5, "eval_loss": 0.6, "eval_rewards/chosen": 0.02,
                  "eval_rewards/rejected": -0.01, "eval_rewards/accuracies": 0.8, "eval_rewards/margins": 0.03,
                  "eval_logps/chosen": -41.0, "eval_logps/rejected": -44.0, "wall_time": 2.5,
                  "memory_rss_mb": 510.0})
    return lines


def sft_metrics() -> list[dict]:
    return [{"step": s, "epoch": s / 4, "loss": 2.0 / s, "learning_rate": 1e-3, "grad_norm": 1.0,
             "wall_time": float(s), "memory_rss_mb": 400.0} for s in (1, 2, 3)] + \
           [{"step": 3, "epoch": 0.75, "eval_loss": 1.1, "wall_time": 3.5, "memory_rss_mb": 400.0}]


# Loaded by every Python process started with PAUSE's folder on PYTHONPATH: the first engine to write a
# given step to status.json stops itself (SIGSTOP) right after, once (a marker file), so a test can kill
# it at exactly that step however slowly it polls on a loaded machine.
PAUSE = """import os, signal, sys
import engine.runs.status as status

STEP = int(os.environ["WORKBENCH_TEST_PAUSE_AT_STEP"])
MARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"paused-at-{STEP}")
write_status = status.write_status


def pausing_write_status(folder, **changes):
    written = write_status(folder, **changes)
    engine = sys.argv[0].endswith(os.path.join("engine", "train.py"))
    if engine and changes.get("step") == STEP and not os.path.exists(MARK):
        open(MARK, "w").close()
        os.kill(os.getpid(), signal.SIGSTOP)
    return written


status.write_status = pausing_write_status
"""


def engines_pause_at(folder: Path, step: int) -> dict[str, str]:
    """The environment under which the next engine to reach ``step`` pauses there (see PAUSE): for
    monkeypatch.setenv, before the engine (or the server that starts it) is started."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(PAUSE)
    return {"PYTHONPATH": str(folder), "WORKBENCH_TEST_PAUSE_AT_STEP": str(step)}


def kill_when_paused(pid: int, timeout: float = 300) -> None:
    """SIGKILL an engine once it has paused itself (engines_pause_at), as the out-of-memory killer would."""
    import os
    import signal

    import psutil

    deadline = time.time() + timeout
    while psutil.Process(pid).status() != psutil.STATUS_STOPPED:
        assert time.time() < deadline, f"the engine (pid {pid}) never paused"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    """A loopback port free at this moment; another process may still take it before the caller binds
    it, so callers retry on another (serve_in_process, tests.webui.browser.start_server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_process(demo, tries: int = 5, **launch) -> str:
    """Serve a built app from this process on a free loopback port (webui.app.launch, not blocking;
    ``launch``: its keyword arguments) and return its URL. Close it with demo.close()."""
    from webui import app

    for _ in range(tries):
        port = free_port()
        try:
            app.launch(demo, "127.0.0.1", port, block=False, quiet=True, **launch)
        except OSError:  # taken between free_port and the bind
            continue
        return f"http://127.0.0.1:{port}"
    raise RuntimeError(f"no free port to serve on after {tries} tries")
