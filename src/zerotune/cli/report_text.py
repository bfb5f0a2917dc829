"""Human-readable printing of evaluation results in the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from ..terminal.console import console as terminal_console

if TYPE_CHECKING:
    from rich.console import Console


def print_eval(m: dict) -> None:
    console = terminal_console()
    console.print(f"[bold]{m['run']}[/bold]  split={m['split']}  checkpoint={m['checkpoint']}  n={m['n']}")
    if "accuracy" in m:
        auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
        console.print(f"accuracy {m['accuracy']:.4f}  precision {m['precision_macro']:.4f}  "
                      f"recall {m['recall_macro']:.4f}  f1 {m['f1_macro']:.4f} (macro)  roc_auc {auc}  loss {m['loss']:.4f}")
        per = Table("class", "precision", "recall", "f1", "support")
        for name, r in m["per_class"].items():
            per.add_row(name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"]))
        console.print(per)
        names = list(m["per_class"])
        cm = Table("true \\ pred", *names, title="confusion matrix")
        for name, row in zip(names, m["confusion_matrix"]):
            cm.add_row(name, *(str(v) for v in row))
        console.print(cm)
        if "tta" in m:
            _print_tta(console, m)
    elif "exact_match" in m:  # instruction tuning
        console.print(f"exact match {m['exact_match']:.4f}  loss {m['loss']:.4f}  perplexity {m['perplexity']:.4f} "
                      f"(answer tokens: {m['tokens']:,})")
    elif "preference_accuracy" in m:  # preference tuning
        console.print(f"preference accuracy {m['preference_accuracy']:.4f}  loss {m['loss']:.4f}  "
                      f"reward margin {m['rewards/margin']:.4f}  rewards chosen {m['rewards/chosen']:.4f} "
                      f"rejected {m['rewards/rejected']:.4f}")
    elif "perplexity" in m:
        console.print(f"loss {m['loss']:.4f}  perplexity {m['perplexity']:.4f}  "
                      f"bits per token {m['bits_per_token']:.4f}  tokens {m['tokens']:,}")
    else:
        console.print(f"r2 {m['r2']:.4f}  mse {m['mse']:.4f}  rmse {m['rmse']:.4f}  mae {m['mae']:.4f}")


def _print_tta(console: Console, m: dict) -> None:
    t = m["tta"]
    console.print(f"test-time augmentation ({len(t['views'])} views: {', '.join(t['views'])})")
    console.print(f"accuracy {t['accuracy']:.4f} (plain {m['accuracy']:.4f})  f1 {t['f1_macro']:.4f} "
                  f"(plain {m['f1_macro']:.4f})  loss {t['loss']:.4f} (plain {m['loss']:.4f})")
