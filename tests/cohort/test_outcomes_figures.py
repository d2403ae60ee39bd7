"""The paper's two Kaplan-Meier figures, drawn alike (issue 12 §4): Figure 1 (OS from BMC
diagnosis) and Figure 2 (OS from diagnosis of metastatic disease), each with the paper's
median and 95% CI beside the data's curve, and a time axis that covers the whole curve."""
from __future__ import annotations

import matplotlib.pyplot as plt

from cohort.outcomes.plots import PublishedMedian, km_figure
from cohort.outcomes.survival import kaplan_meier

# OS from first metastasis, months: long follow-up (one patient censored at 170 months)
DURATIONS = [8, 14, 19, 23, 26, 31, 31, 35, 40, 44, 53, 61, 70, 88, 113, 170]
OBSERVED = [True] * 15 + [False]
PAPER = PublishedMedian("Results", 31.0, (23.0, 53.0))


def _figure(published=PAPER):
    km = kaplan_meier(DURATIONS, OBSERVED, label="all")
    return km_figure([km], "Figure 2", published=published)


def test_the_axis_and_the_numbers_at_risk_reach_the_longest_follow_up():
    fig = _figure()
    try:
        tab = fig.axes[1]
        assert tab.get_xlim()[1] >= max(DURATIONS)
        ticks = list(tab.get_xticks())
        assert ticks[0] == 0 and ticks[-1] >= max(DURATIONS)
        at_risk = {float(t.get_position()[0]): t.get_text() for t in tab.texts}
        assert at_risk[ticks[-1]] == "0" and at_risk[0.0] == str(len(DURATIONS))
        assert at_risk[168.0] == "1"  # the patient censored at 170 is still at risk at 168
    finally:
        plt.close(fig)


def test_the_papers_median_and_interval_are_drawn_at_half_survival():
    fig = _figure()
    try:
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "paper (Results): median 31 (23-53)" in labels
        marker = [line for line in ax.lines if line.get_marker() == "D"]
        assert [tuple(xy) for xy in marker[0].get_xydata()] == [(31.0, 0.5)]
    finally:
        plt.close(fig)


def test_without_a_published_median_nothing_of_the_paper_is_drawn():
    fig = _figure(published=None)
    try:
        ax = fig.axes[0]
        assert not [line for line in ax.lines if line.get_marker() == "D"]
        assert not any("paper" in t.get_text() for t in ax.get_legend().get_texts())
    finally:
        plt.close(fig)


def test_the_report_shows_figure_1_and_figure_2_for_each_group():
    from outcomes_db import sample_report

    result, _ = sample_report()
    titles = [im.title for im in result.document.images()]
    for label in result.groups:
        assert f"Figure 1: OS from BMC diagnosis ({label})" in titles
        assert (f"Figure 2: OS from diagnosis of metastatic disease (first distant metastasis) "
                f"({label})") in titles
    for im in result.document.images():
        assert im.png.startswith(b"\x89PNG")
