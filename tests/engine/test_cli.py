"""The `workbench` command as a user types it: the smoke pair, runs, generate, config errors."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.runs.folder import list_runs
from tests.helpers import REPO


def test_bad_override_is_rejected_naming_the_key(capsys, saves):
    before = list_runs()
    assert main(["train", str(REPO / "examples/smoke/dpo.yaml"), "--set", "dpo.beta=-1"]) == 2
    assert capsys.readouterr().err.startswith("error: dpo.beta: -1.0 is below the minimum")
    assert list_runs() == before  # nothing created for a rejected config


def test_config_prints_every_default(capsys):
    assert main(["config", str(REPO / "examples/smoke/sft.yaml"), "--set", "lora.rank=4"]) == 0
    out = capsys.readouterr().out
    assert "rank: 4" in out and "lora_dropout" not in out and "dropout: 0.0" in out


@pytest.fixture(scope="module")
def smoke_runs(saves):
    assert main(["models", "make-tiny"]) == 0
    assert main(["train", str(REPO / "examples/smoke/sft.yaml")]) == 0
    sft = list_runs()[0]
    assert main(["train", str(REPO / "examples/smoke/dpo.yaml")]) == 0
    dpo = list_runs()[0]
    return sft, dpo


def test_smoke_pair_chains_sft_into_dpo(smoke_runs, capsys):
    sft, dpo = smoke_runs
    assert sft.status().state == dpo.status().state == "completed"
    assert dpo.config().init_from == str(sft)  # latest:sft was resolved and recorded
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert sft.name in out and dpo.name in out and "rewards/accuracies=" in out


def test_generate_with_a_runs_adapter(smoke_runs, capsys):
    _sft, dpo = smoke_runs
    assert main(["generate", "--model", "tiny-llama", "--adapter", dpo.name, "--max-new-tokens", "5",
                 "List all users."]) == 0
    assert capsys.readouterr().out.strip()


def test_runs_and_the_summary_show_health_warnings(saves, capsys):
    from engine.config import from_dict
    from engine.runs.console import print_summary
    from engine.runs.folder import create_run
    from tests.helpers import tiny_config

    run = create_run(from_dict(tiny_config("dpo")))
    falling = {"code": "chosen_reward_falling", "message": "rewards/chosen fell from 0 to -0.4", "step": 7}
    print_summary(run, run.update_status(state="completed", step=8, max_steps=8, warnings=[falling]))
    assert "  warning (step 7): rewards/chosen fell from 0 to -0.4" in capsys.readouterr().out
    assert main(["runs"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(run.name))
    assert line.endswith("[warnings: chosen_reward_falling]")


def test_runs_show_each_stages_own_summary_and_a_crashed_engine(runs_env, dead_pid, capsys):
    from tests.helpers import make_run

    rm = make_run("rm", metrics=[{"step": 4, "loss": 0.5, "accuracy": 0.75}, {"step": 4, "eval_accuracy": 0.8,
                                                                            "eval_margin": 1.25}])
    ppo = make_run("ppo", metrics=[{"step": 4, "loss": 0.1, "objective/scores": 0.42, "objective/kl": 1.5}])
    dead = make_run("sft", "running", pid=dead_pid)
    assert main(["runs"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines[rm.name].endswith("loss=0.5  accuracy=0.75  eval_accuracy=0.8  eval_margin=1.25")
    assert lines[ppo.name].endswith("objective/scores=0.42  objective/kl=1.5")
    assert lines[dead.name].split()[2] == "crashed"  # the UI's word too


def test_generate_flags_come_from_sampling_and_bad_values_name_the_flag(capsys):
    assert main(["generate", "hi", "--temperature", "3"]) == 2
    assert capsys.readouterr().err.startswith("error: --temperature: 3.0 is above the maximum 2.0")
    assert main(["generate", "hi", "--max-new-tokens", "many"]) == 2
    assert "--max-new-tokens: expected int, got 'many'" in capsys.readouterr().err
