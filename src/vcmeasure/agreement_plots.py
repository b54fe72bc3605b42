"""Figure 7 of the paper: agreement of the automatic measurement with the reader's (DESIGN §6).

Top row, the headline method (MRDN when it ran): (a) Bland–Altman plot — difference predicted − reference
against their mean, bias and bias ± 1.96 SD; (b) predicted against reference with the OLS regression equation
and the identity line. Below, the same two panels for every method, so the baselines can be compared.
Statistics come from :mod:`vcmeasure.stats`, so the figure and ``agreement.json`` show the same numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import stats
from .plotting import plt, save_figure


def headline_method(methods: list[str]) -> str | None:
    """MRDN (the paper's model) when present, else the first learned model, else the first method."""
    if "mrdn" in methods:
        return "mrdn"
    learned = [m for m in methods if m != "image_processing"]
    return (learned or methods or [None])[0]


def _no_data(ax, n: int, title: str) -> None:
    ax.text(0.5, 0.5, f"not enough data (n = {n})", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def bland_altman_panel(ax, predicted, reference, unit: str, title: str, small: bool = False) -> dict:
    """Fig. 7a: differences against means, bias and limits of agreement; returns the statistics drawn."""
    pred, ref = stats.paired_finite(predicted, reference)
    ba = stats.bland_altman(pred, ref)
    if pred.size == 0:
        _no_data(ax, 0, title)
        return ba
    ax.scatter((pred + ref) / 2.0, pred - ref, s=8 if small else 16, alpha=0.7, color="tab:blue", lw=0)
    ax.axhline(ba["bias"], color="k", ls="--", lw=1)
    if np.isfinite(ba["loa_low"]):
        for y in (ba["loa_low"], ba["loa_high"]):
            ax.axhline(y, color="tab:red", ls=":", lw=1)
        text = (f"bias {ba['bias']:.2f}\nLoA [{ba['loa_low']:.2f}, {ba['loa_high']:.2f}]\n"
                f"inside {100 * ba['share_inside']:.0f} %")
    else:
        text = f"bias {ba['bias']:.2f}"
    ax.text(0.02, 0.98, text, transform=ax.transAxes, va="top", fontsize=6 if small else 8,
            bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    ax.set_xlabel(f"mean of predicted and reference, {unit}", fontsize=7 if small else 9)
    ax.set_ylabel(f"predicted − reference, {unit}", fontsize=7 if small else 9)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=6 if small else 8)
    return ba


def scatter_panel(ax, predicted, reference, unit: str, title: str, small: bool = False) -> dict:
    """Fig. 7b: predicted against reference, identity line and the OLS regression equation."""
    pred, ref = stats.paired_finite(predicted, reference)
    fit = stats.ols_line(pred, ref)
    r = stats.pearson(pred, ref)
    if pred.size == 0:
        _no_data(ax, 0, title)
        return fit
    ax.scatter(ref, pred, s=8 if small else 16, alpha=0.7, color="tab:blue", lw=0)
    lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    grid = np.array([lo - pad, hi + pad])
    ax.plot(grid, grid, color="0.6", ls="--", lw=1)
    lines = [f"n = {pred.size}"]
    if np.isfinite(fit["slope"]):
        ax.plot(grid, fit["intercept"] + fit["slope"] * grid, color="tab:red", lw=1)
        sign = "+" if fit["intercept"] >= 0 else "−"
        lines.insert(0, f"y = {fit['slope']:.3f}x {sign} {abs(fit['intercept']):.3f}")
        if np.isfinite(fit["r2"]):
            lines.append(f"R² = {fit['r2']:.3f}")
    if np.isfinite(r["r"]):
        lines.append(f"r = {r['r']:.3f}")
    ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=6 if small else 8,
            bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    ax.set_xlim(grid)
    ax.set_ylim(grid)
    ax.set_xlabel(f"reference, {unit}", fontsize=7 if small else 9)
    ax.set_ylabel(f"predicted, {unit}", fontsize=7 if small else 9)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=6 if small else 8)
    return fit


def figure7(frame: pd.DataFrame, methods: list[str], measure: str, out_png: str) -> None:
    """Draw Fig. 7 (headline method) and the per-method panel rows, on the fractured test vertebrae."""
    sub = stats.select_subset(frame)
    unit = stats.measure_label(measure)
    head = headline_method(methods)
    ncol = max(len(methods), 2)
    fig = plt.figure(figsize=(max(10.0, 2.6 * ncol), 12.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1.6])
    ax_a, ax_b = top.subplots(1, 2)
    part = sub[sub["method"] == head] if head else sub.iloc[0:0]
    label = stats.method_label(head) if head else "none"
    bland_altman_panel(ax_a, part["predicted"], part["reference"], unit, f"(a) Bland–Altman, {label}")
    scatter_panel(ax_b, part["predicted"], part["reference"], unit, f"(b) predicted vs. reference, {label}")
    top.suptitle(f"Fig. 7 — {label} against the reader's value (value_reader), fractured test vertebrae",
                 fontsize=11)
    axes = bottom.subplots(2, ncol, squeeze=False)
    for i in range(ncol):
        if i >= len(methods):
            axes[0, i].set_visible(False)
            axes[1, i].set_visible(False)
            continue
        part = sub[sub["method"] == methods[i]]
        name = stats.method_label(methods[i])
        bland_altman_panel(axes[0, i], part["predicted"], part["reference"], unit, f"{name}: Bland–Altman", True)
        scatter_panel(axes[1, i], part["predicted"], part["reference"], unit, f"{name}: scatter", True)
    bottom.suptitle("Every method (same vertebrae, same axes conventions)", fontsize=10)
    save_figure(fig, out_png)


def write_figure7(prediction_files: list[str], measurements_csv: str, methods: list[str], out_png: str) -> None:
    """Rule ``figure7``: results/figures/fig7_agreement.png."""
    frame = stats.read_method_predictions(prediction_files, methods)
    figure7(frame, methods, stats.read_measure(measurements_csv), out_png)
