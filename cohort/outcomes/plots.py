"""Kaplan-Meier figures as PNG bytes: step curves with 95% bands and a numbers-at-risk table
under the axis (matplotlib, non-interactive Agg backend; nothing is shown or written)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .survival import KaplanMeier

COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad")


def km_png(curves: list[KaplanMeier], title: str, xlabel: str = "months",
           at_risk_times: tuple[float, ...] = (0, 12, 24, 36, 48, 60, 72)) -> bytes:
    """One figure of one or more KM curves; returns PNG bytes."""
    fig, (ax, tab) = plt.subplots(2, 1, figsize=(7.5, 5.2), dpi=110,
                                  gridspec_kw={"height_ratios": [4, 1.1], "hspace": 0.08},
                                  sharex=True)
    for km, colour in zip(curves, COLOURS, strict=False):
        c = km.curve
        ax.step(c["t"], c["S"], where="post", color=colour, lw=1.8,
                label=f"{km.label} (n={km.n}, median {_fmt(km.median)})")
        ax.fill_between(c["t"], c["lo"], c["hi"], step="post", color=colour, alpha=0.15, lw=0)
        cens = [t for t, e in zip(km.durations, km.observed, strict=True) if not e]
        if cens:
            ys = [float(c["S"][c["t"] <= t].iloc[-1]) for t in cens]
            ax.plot(cens, ys, "|", color=colour, ms=9, mew=1.5)
    ax.axhline(0.5, color="#999", lw=0.8, ls=":")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("overall survival")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.grid(alpha=0.25)
    tmax = max(max(k.durations) for k in curves)
    ticks = [t for t in at_risk_times if t <= tmax + 12]
    tab.set_xlim(0, max(ticks[-1], tmax) * 1.02)
    tab.set_ylim(-0.5, len(curves) - 0.5)
    tab.set_yticks(range(len(curves)), [k.label for k in reversed(curves)], fontsize=8)
    for i, km in enumerate(reversed(curves)):
        for t in ticks:
            tab.text(t, i, str(int(sum(d >= t for d in km.durations))), ha="center",
                     va="center", fontsize=8)
    tab.set_xticks(ticks)
    tab.set_xlabel(f"{xlabel}; numbers at risk below the axis")
    for side in ("top", "right", "left"):
        tab.spines[side].set_visible(False)
    tab.tick_params(axis="y", length=0, pad=14)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _fmt(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.1f}"
