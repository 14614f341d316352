"""Seed 004's curves as a PNG, drawn from the run folders: rewards/chosen and rewards/margins of the
DPO and the DPOP run, each an overlay chart as the Runs tab's comparison draws it.

    python examples/seed004/plot.py DPO_RUN DPOP_RUN OUT.png

Renders with Debian's chromium (`make browser` installs it); nothing is downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from engine.runs.folder import resolve_run
from webui.charts import overlay_chart

METRICS = ("rewards/chosen", "rewards/margins")
WIDTH, HEIGHT = 1200, 420


def page(runs: dict[str, list[dict]]) -> str:
    """One HTML page with the charts side by side, plotly.js inlined (the browser is offline)."""
    charts = []
    for i, metric in enumerate(METRICS):
        fig = overlay_chart(runs, metric)
        fig.add_hline(y=0, line={"color": "#999", "width": 1})
        fig.update_layout(width=WIDTH // len(METRICS) - 10, height=HEIGHT - 20)
        charts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0,
                                   config={"displayModeBar": False}))
    cells = "".join(f'<div style="display:inline-block">{chart}</div>' for chart in charts)
    return f'<html><body style="margin:0;background:white;white-space:nowrap">{cells}</body></html>'


def screenshot(html: str, out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium not found: run `make browser` first")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "curves.html"
        source.write_text(html, encoding="utf-8")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=5000",
                        f"--screenshot={out.resolve()}", source.as_uri()],
                       check=True, capture_output=True)


def main(dpo: str, dpop: str, out: str) -> None:
    runs = {"DPO": resolve_run(dpo).metrics(), "DPOP": resolve_run(dpop).metrics()}
    screenshot(page(runs), Path(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
