"""`zerotune report RUN`: one self-contained HTML page (or Markdown with PNGs) about a run.

Curves come from the event files (what TensorBoard shows); final metrics and the test confusion
matrix from metrics.json when training finished; the latest evaluation images (ROC, worst
misclassified, predicted vs true) straight from the event file, where they are stored as PNG.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..run.atomic import atomic_write_bytes, atomic_write_text
from ..run.files import RunDir, outermost_missing, read_json, removed_on_failure
from ..run.lock import run_lock_if_inside
from ..run.schema import read_metrics
from ..track import figures
from ..track.events import find_runs, read_run_events

SMOOTH_ABOVE = 200  # curves with more points than this are drawn with a moving average
CSS = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
       "img{max-width:100%;border:1px solid #eee}h2{margin-top:1.6em;font-size:1.15em}")


@dataclass
class Section:
    title: str
    png: bytes | None = None
    table: tuple[list[str], list[list]] | None = None
    text: str | None = None


def _smooth(steps: list, values: list) -> tuple[list, list]:
    if len(values) <= SMOOTH_ABOVE:
        return steps, values
    w = max(1, len(values) // 100)
    kernel = np.ones(w) / w
    return steps[w - 1:], np.convolve(np.asarray(values, dtype=np.float64), kernel, mode="valid").tolist()


def _curve(ev, title: str, ylabel: str, tags: dict[str, str], log_y: bool = False) -> Section | None:
    series = {}
    for tag, label in tags.items():
        pts = ev.scalars.get(tag)
        if pts:
            series[label] = _smooth([s for s, _ in pts], [v for _, v in pts])
    if not series:
        return None
    return Section(title, png=figures.to_png(figures.curves_figure(series, title, ylabel, log_y)))


def _metrics_table(m: dict | None, ev) -> Section:
    keys = ("loss", "accuracy", "f1_macro", "roc_auc", "r2", "mse", "rmse", "mae")
    if m is not None:
        rows = [[k] + [_num((m.get(split) or {}).get(k)) for split in ("val", "test")] for k in keys
                if any((m.get(split) or {}).get(k) is not None for split in ("val", "test"))]
        title = f"final metrics ({m.get('checkpoint', 'best')} checkpoint)"
        return Section(title, table=(["metric", "val", "test"], rows))
    rows = [[tag, _num(ev.last(tag))] for tag in sorted(ev.scalars) if tag.startswith(("val/", "best/"))]
    return Section("last evaluation (the run has no metrics.json: it did not finish)", table=(["metric", "value"], rows))


def _confusion(metrics: dict | None, ev) -> Section | None:
    if metrics is not None:
        m = metrics.get("test") or {}
        if m.get("confusion_matrix") and m.get("per_class"):
            fig = figures.confusion_matrix_figure(np.asarray(m["confusion_matrix"]), list(m["per_class"]),
                                                  "test confusion matrix (best checkpoint)")
            return Section("confusion matrix (test)", png=figures.to_png(fig))
    if "val/confusion_matrix" in ev.images:
        return Section("confusion matrix (validation, last evaluation)", png=ev.images["val/confusion_matrix"])
    return None


def _doctor(run_dir: Path) -> Section:
    """`zerotune doctor`'s findings, most severe first."""
    from . import diagnose

    findings = diagnose(run_dir)
    if not findings:
        return Section("doctor", text="no findings: nothing in this run's curves looks wrong")
    rows = [[f.severity, f.id, f.message, "  ".join(f.fixes)] for f in findings]
    return Section("doctor (zerotune doctor)", table=(["severity", "finding", "what", "fixes"], rows))


def _num(v) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def build_sections(run_dir: Path) -> tuple[str, list[Section]]:
    """The report's title and sections for one run directory."""
    run = RunDir(run_dir)
    # every file is read and checked before anything is drawn: a damaged one is one line, and no report
    metrics = read_metrics(run.metrics) if run.metrics.exists() else None
    env = read_json(run.env) if run.env.exists() else None
    doctor = _doctor(run_dir)
    ev = read_run_events(run_dir, images=True)
    monitor = next((t.removeprefix("best/") for t in ev.scalars if t.startswith("best/")), None)
    summary = [["run", run_dir.name], ["status", "finished" if ev.finished else "unfinished (killed or running)"],
               ["model", ev.hparams.get("model.name", "-")], ["data", ev.hparams.get("data.name", "-")],
               ["steps", ev.last_step]]
    if monitor:
        summary.append([f"best {monitor}", _num(ev.last(f"best/{monitor}"))])
    seconds = ev.last("run/seconds")
    if seconds is not None:
        summary.append(["training time", f"{seconds:.1f} s"])
    sections = [Section("summary", table=(["", ""], summary)), doctor, _metrics_table(metrics, ev)]
    classification = any(t.endswith("accuracy") for t in ev.scalars)
    curves = [
        _curve(ev, "loss", "loss", {"train/loss": "train (per step)", "train/eval_loss": "train (eval mode)",
                                    "val/loss": "validation"}, log_y=True),
        _curve(ev, "accuracy", "accuracy", {"train/accuracy": "train", "val/accuracy": "validation"})
        if classification else _curve(ev, "R²", "R²", {"train/r2": "train", "val/r2": "validation"}),
        _curve(ev, "learning rate", "lr", {"train/lr": "lr"}),
        _curve(ev, "gradient norm", "norm", {"train/grad_norm": "global, before clipping"}, log_y=True),
    ]
    sections += [c for c in curves if c is not None]
    cm = _confusion(metrics, ev)
    if cm:
        sections.append(cm)
    for tag, title in (("val/roc", "ROC curves (validation, last evaluation)"),
                       ("val/predicted_vs_true", "predicted vs true (validation, last evaluation)"),
                       ("val/worst_misclassified", "worst-misclassified validation examples (last evaluation)")):
        if tag in ev.images:
            sections.append(Section(title, png=ev.images[tag]))
    if ev.hparams:
        rows = [[k, v] for k, v in sorted(ev.hparams.items())]
        sections.append(Section("hyperparameters", table=(["name", "value"], rows)))
    if env is not None:
        rows = [[k, v] for k, v in sorted(env.items())]
        sections.append(Section("environment", table=(["what", "value"], rows)))
    return f"zerotune report: {run_dir.name}", sections


def _html(title: str, sections: list[Section]) -> str:
    e = html.escape
    head = f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style></head>"
    parts = [head, f"<body><h1>{e(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        if s.table:
            header, rows = s.table
            head = "".join(f"<th>{e(str(h))}</th>" for h in header) if any(header) else ""
            body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
            parts.append(f"<table>{'<tr>' + head + '</tr>' if head else ''}{body}</table>")
        if s.png:
            parts.append(f"<img alt='{e(s.title)}' src='data:image/png;base64,{base64.b64encode(s.png).decode()}'>")
        if s.text:
            parts.append(f"<pre>{e(s.text)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _assets(out: Path) -> Path:
    """The folder of a Markdown report's images."""
    return out.with_name(out.stem + "_files")


def _markdown(title: str, sections: list[Section], out: Path) -> str:
    assets = _assets(out)
    lines = [f"# {title}", ""]
    for i, s in enumerate(sections):
        lines += [f"## {s.title}", ""]
        if s.table:
            header, rows = s.table
            header = [h or " " for h in header]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
            lines.append("")
        if s.png:
            assets.mkdir(parents=True, exist_ok=True)
            name = f"{i:02d}_{''.join(ch if ch.isalnum() else '_' for ch in s.title)[:40]}.png"
            atomic_write_bytes(assets / name, s.png)
            lines += [f"![{s.title}]({assets.name}/{name})", ""]
        if s.text:
            lines += ["```", s.text, "```", ""]
    return "\n".join(lines)


def write_report(run_dir: str | Path, out: str | Path | None = None, fmt: str = "html") -> Path:
    """Write a report about one run.

    Args:
        run_dir: the run directory.
        out: output file (default: ``run_dir/report.html`` or ``run_dir/report.md``).
        fmt: "html" (one self-contained file, images inline) or "md" (Markdown plus a
            ``<name>_files/`` folder of PNGs).

    Returns:
        The path written.

    Raises:
        UserError: for an unknown format or a directory that holds no run; another job writing in the
            run when the report goes into it.
    """
    from ..track.events import require_tensorboard

    if fmt not in ("html", "md"):
        raise UserError(f"report format {fmt!r} is unknown; allowed: html, md")
    require_tensorboard()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    if run_dir not in find_runs(run_dir):
        raise UserError(f"{run_dir} holds no TensorBoard event files; is it a run directory?")
    out = Path(out) if out else RunDir(run_dir).report(fmt)
    with run_lock_if_inside(out, run_dir):  # into the run (the default): not while another job writes there
        title, sections = build_sections(run_dir)
        # A failed write (a full disk) leaves neither a cut report nor folders and images it made.
        with removed_on_failure(outermost_missing(out.parent), _assets(out) if fmt == "md" else None):
            out.parent.mkdir(parents=True, exist_ok=True)
            text = _html(title, sections) if fmt == "html" else _markdown(title, sections, out)
            atomic_write_text(out, text)
    return out
