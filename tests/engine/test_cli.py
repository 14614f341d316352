"""The `workbench` command as a user types it: the smoke pair, runs, generate, config errors."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.runs.folder import list_runs, read_config, read_status
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
    assert read_status(sft)["state"] == read_status(dpo)["state"] == "completed"
    assert read_config(dpo).init_from == str(sft)  # latest:sft was resolved and recorded
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert sft.name in out and dpo.name in out and "rewards/accuracies=" in out


def test_generate_with_a_runs_adapter(smoke_runs, capsys):
    _sft, dpo = smoke_runs
    assert main(["generate", "--model", "tiny-llama", "--adapter", dpo.name, "--max-new-tokens", "5",
                 "List all users."]) == 0
    assert capsys.readouterr().out.strip()


def test_runs_and_the_summary_show_health_warnings(saves, capsys):
    from engine.cli import _print_summary
    from engine.config import from_dict
    from engine.runs.folder import create_run, write_status
    from tests.helpers import tiny_config

    run = create_run(from_dict(tiny_config("dpo")))
    falling = {"code": "chosen_reward_falling", "message": "rewards/chosen fell from 0 to -0.4", "step": 7}
    _print_summary(run, write_status(run, state="completed", step=8, max_steps=8, warnings=[falling]))
    assert "  warning (step 7): rewards/chosen fell from 0 to -0.4" in capsys.readouterr().out
    assert main(["runs"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(run.name))
    assert line.endswith("[warnings: chosen_reward_falling]")
