"""The report's figures as PNG files, one figure per file, drawn on matplotlib Figures (no pyplot, no global state)."""

from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from delegate.report.analysis import Report, pareto_front
from delegate.run_folder import ACCURACY_PLOT, COST_PLOT, LATENCY_PLOT, TOKENS_PLOT

DPI = 150
TOKEN_KINDS = ("prompt", "completion")


def _figure(n_methods: int) -> Figure:
    """A figure wide enough for long method labels and tall enough for one row per method."""
    return Figure(figsize=(11, 2.2 + 0.6 * n_methods), layout="constrained")


def plot_accuracy(report: Report, path: Path) -> Path:
    """Accuracy per method, a dot with its Wilson 95% CI as error bars, the value and n written beside it."""
    rows = report.comparison
    figure = _figure(len(rows))
    ax = figure.subplots()
    positions = range(len(rows))
    accuracy = [100 * r["accuracy"] for r in rows]
    errors = [
        [a - 100 * r["accuracy_ci_low"] for a, r in zip(accuracy, rows)],
        [100 * r["accuracy_ci_high"] - a for a, r in zip(accuracy, rows)],
    ]
    ax.errorbar(accuracy, positions, xerr=errors, fmt="o", markersize=8, capsize=6, color="tab:blue")
    for position, row, value in zip(positions, rows, accuracy):
        ax.annotate(
            f"{value:.1f}%  [{100 * row['accuracy_ci_low']:.1f}, {100 * row['accuracy_ci_high']:.1f}]  n={row['n']}",
            (100 * row["accuracy_ci_high"], position),
            xytext=(8, 0),
            textcoords="offset points",
            va="center",
            fontsize=10,
        )
    ax.set_yticks(list(positions), [r["method"] for r in rows], fontsize=10)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    # Room on the right for the value labels; ticks only over the meaningful 0-100%.
    ax.set_xlim(0, 140)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("accuracy (%), bars: Wilson 95% confidence interval")
    ax.set_title("Accuracy per method")
    ax.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=DPI)
    return path


def plot_tokens(report: Report, path: Path) -> Path:
    """Average tokens per problem per method, stacked by model (role) and by prompt / completion."""
    rows = report.comparison
    figure = _figure(len(rows))
    ax = figure.subplots()
    positions = list(range(len(rows)))
    palette = colormaps["tab20"]
    left = [0.0] * len(rows)
    for role_index, role in enumerate(report.roles):
        for kind_index, kind in enumerate(TOKEN_KINDS):
            values = [r[f"avg_{role}_{kind}_tokens"] for r in rows]
            # tab20 pairs a dark and a light shade: one hue per model, dark for prompt, light for completion.
            ax.barh(
                positions, values, left=left, color=palette(2 * role_index + kind_index), label=f"{role.upper()} {kind}"
            )
            left = [a + b for a, b in zip(left, values)]
    for position, total in zip(positions, left):
        ax.annotate(
            f"{total:,.0f}", (total, position), xytext=(6, 0), textcoords="offset points", va="center", fontsize=10
        )
    ax.set_yticks(positions, [r["method"] for r in rows], fontsize=10)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, max(max(left), 1) * 1.15)
    ax.set_xlabel("average tokens per problem, as the models reported them")
    ax.set_title("Tokens per problem, by model and prompt / completion")
    ax.grid(axis="x", alpha=0.3)
    figure.legend(loc="outside upper right", ncols=2 * len(report.roles), fontsize=9)
    figure.savefig(path, dpi=DPI)
    return path


def plot_latency(report: Report, path: Path) -> Path:
    """The distribution of end-to-end latency per problem for each method: a box plot with every problem as a dot."""
    runs = report.runs
    figure = _figure(len(runs))
    ax = figure.subplots()
    positions = list(range(len(runs)))
    latencies_s = [[r.latency_s for r in run.records] for run in runs]
    ax.boxplot(
        latencies_s,
        positions=positions,
        orientation="horizontal",
        widths=0.5,
        showmeans=True,
        showfliers=False,
        meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black"},
    )
    # Every problem as a dot (outliers included, so the box plot draws no fliers of its own).
    for position, values in zip(positions, latencies_s):
        # A small fixed vertical spread, so points of equal latency stay visible without randomness.
        offsets = [((i % 5) - 2) * 0.05 for i in range(len(values))]
        ax.scatter(values, [position + o for o in offsets], s=12, alpha=0.5, color="tab:blue", zorder=3)
    ax.set_yticks(positions, [run.label for run in runs], fontsize=10)
    ax.set_ylim(len(runs) - 0.5, -0.5)
    ax.set_xlabel(
        "end-to-end latency per problem (s); box: quartiles, line: median, diamond: mean,\nwhiskers: 1.5 × IQR, dots: problems"
    )
    ax.set_title("Latency per problem")
    ax.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=DPI)
    return path


def plot_accuracy_vs_cost(report: Report, path: Path) -> Path:
    """Accuracy (with its CI) against cost per 1,000 problems, each point named, the Pareto front drawn through the
    runs no cheaper run matches in accuracy."""
    rows = report.comparison
    figure = Figure(figsize=(11, 7), layout="constrained")
    ax = figure.subplots()
    cost = [r["cost_per_1k_problems_usd"] for r in rows]
    accuracy = [100 * r["accuracy"] for r in rows]
    errors = [
        [a - 100 * r["accuracy_ci_low"] for a, r in zip(accuracy, rows)],
        [100 * r["accuracy_ci_high"] - a for a, r in zip(accuracy, rows)],
    ]
    ax.errorbar(
        cost,
        accuracy,
        yerr=errors,
        fmt="o",
        markersize=8,
        capsize=5,
        color="tab:blue",
        alpha=0.8,
        label="method (bars: Wilson 95% CI)",
    )
    front = pareto_front(list(zip(cost, accuracy)))
    ax.plot(
        [cost[i] for i in front],
        [accuracy[i] for i in front],
        "-",
        color="tab:red",
        linewidth=2,
        marker="o",
        markersize=14,
        markerfacecolor="none",
        markeredgewidth=2,
        label="Pareto front (no cheaper method is as accurate)",
    )
    for index, row in enumerate(rows):
        # Staggered offsets keep labels of coinciding points apart.
        ax.annotate(
            row["method"],
            (cost[index], accuracy[index]),
            xytext=(14, 12 - 14 * (index % 4)),
            textcoords="offset points",
            fontsize=10,
        )
    highest_cost = max(cost) or 1.0
    ax.set_xlim(-0.05 * highest_cost, 1.6 * highest_cost)
    ax.set_ylim(-5, 105)
    ax.set_xlabel("cost per 1,000 problems (USD)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy against cost")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    figure.savefig(path, dpi=DPI)
    return path


def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """Every figure of the report into `out_dir`; returns their paths."""
    return [
        plot_accuracy(report, out_dir / ACCURACY_PLOT),
        plot_tokens(report, out_dir / TOKENS_PLOT),
        plot_latency(report, out_dir / LATENCY_PLOT),
        plot_accuracy_vs_cost(report, out_dir / COST_PLOT),
    ]
