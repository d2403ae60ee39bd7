"""Kaplan-Meier figures as PNG bytes: step curves with 95% bands and a numbers-at-risk table
under the axis (matplotlib, non-interactive Agg backend; nothing is shown or written)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .survival import KaplanMeier

COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad")


def time_ticks(tmax: float) -> list[float]:
    """Ticks (and at-risk times) every 12 months, or every 24/36/48 for longer follow-up, up to
    the first tick at or past ``tmax``: the axis always covers the whole curve."""
    step = next((s for s in (12, 24, 36, 48) if tmax / s <= 8), 60)
    return [float(t) for t in range(0, int(tmax // step + 2) * step, step)
            if t < tmax + step]


@dataclass(frozen=True)
class PublishedMedian:
    """The median and 95% CI the paper prints for a figure (``source``: where), drawn at
    S = 0.5 beside the data's curve so the two can be compared by eye."""

    source: str
    median: float
    ci: tuple[float, float] | None = None


def km_png(curves: list[KaplanMeier], title: str, xlabel: str = "months",
           published: PublishedMedian | None = None) -> bytes:
    """One figure of one or more KM curves; returns PNG bytes (see :func:`km_figure`)."""
    fig = km_figure(curves, title, xlabel, published)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def km_figure(curves: list[KaplanMeier], title: str, xlabel: str = "months",
              published: PublishedMedian | None = None):
    """The figure of :func:`km_png` (the caller closes it): KM step curves with their 95%
    bands and censoring ticks, the paper's median and CI when given, and the numbers at risk
    under the axis. The time axis and the numbers at risk run to the longest follow-up
    (:func:`time_ticks`), so the axis always covers every curve."""
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
    if published is not None:
        m = published.median
        lo, hi = published.ci or (m, m)
        ci = f" ({lo:g}-{hi:g})" if published.ci else ""
        ax.errorbar([m], [0.5], xerr=[[m - lo], [hi - m]], fmt="D", color="#333", ms=5,
                    capsize=3, lw=1.2, label=f"paper ({published.source}): median {m:g}{ci}")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("overall survival")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.grid(alpha=0.25)
    tmax = max(max(k.durations) for k in curves)
    if published is not None:  # the paper's interval is on the axis too
        tmax = max(tmax, published.ci[1] if published.ci else published.median)
    ticks = time_ticks(tmax)
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
    return fig


def _fmt(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.1f}"


def sensitivity_png(labels: list[str], overlap: list[int], added: list[int],
                    median: list[float | None], ci: list[tuple[float | None, float | None]],
                    title: str = "Sensitivity of the definition") -> bytes:
    """One small figure of a sensitivity run, one row per variant (``labels``, the default
    first): left, the cohort size split into patients shared with the default cohort and
    patients added; right, the KM median OS from the index date with its 95% CI."""
    n = len(labels)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 0.32 * n + 1.3), dpi=110,
                                      sharey=True, gridspec_kw={"width_ratios": [1.2, 1]})
    ys = list(range(n))[::-1]
    left.barh(ys, overlap, color=COLOURS[0], label="also in the default cohort")
    left.barh(ys, added, left=overlap, color=COLOURS[1], label="added")
    left.set_yticks(ys, labels, fontsize=7)
    left.set_xlabel("patients in the cohort", fontsize=8)
    left.legend(fontsize=7, frameon=False, loc="lower right")
    for y, m, (lo, hi) in zip(ys, median, ci, strict=True):
        if m is None:
            continue
        lo_, hi_ = (m if lo is None else lo), (m if hi is None else hi)
        right.errorbar([m], [y], xerr=[[m - lo_], [hi_ - m]], fmt="o", color=COLOURS[0], ms=4,
                       capsize=2, lw=1)
    right.set_xlabel("median OS from index, months (95% CI)", fontsize=8)
    for ax in (left, right):
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.25)
    fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
