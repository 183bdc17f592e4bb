"""PNG curves with a shaded ± std band (matplotlib Agg), like the papers' figures."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kdjax import storage  # noqa: E402


def plot_curves(curves: dict[str, dict], path: str, *, title: str = "", xlabel: str = "epoch",
                ylabel: str = "test accuracy (%)") -> str | None:
    """One line per label (mean) with a shaded band of ± 1 std over seeds; None if empty."""
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for label, c in curves.items():
        mean, std = c["mean"], c["std"]
        line, = ax.plot(c["x"], mean, label=f"{label} (n={c['n']})", lw=1.5)
        ax.fill_between(c["x"], [m - s for m, s in zip(mean, std)],
                        [m + s for m, s in zip(mean, std)], color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    storage.save_figure(fig, path)  # local or gs://
    plt.close(fig)
    return path
