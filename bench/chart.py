"""The drain throughput as a PNG chart: one group of bars per broker, one bar per
system (its median, with the spread of its repetitions as an error bar)."""

from __future__ import annotations

from pathlib import Path


def chart(results: dict[str, dict[str, dict]], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    kinds = list(results)
    systems = list(dict.fromkeys(name for rows in results.values() for name in rows))
    width = 0.8 / max(1, len(systems))
    figure, axes = pyplot.subplots(figsize=(10, 5), dpi=100)
    for index, name in enumerate(systems):
        rows = [results[kind].get(name) or {} for kind in kinds]
        medians = [row.get("tasks_per_second") or 0 for row in rows]
        low = [m - (row.get("min") or m) for m, row in zip(medians, rows, strict=True)]
        high = [(row.get("max") or m) - m for m, row in zip(medians, rows, strict=True)]
        positions = [k + (index - (len(systems) - 1) / 2) * width for k in range(len(kinds))]
        axes.bar(positions, medians, width, yerr=[low, high], capsize=3, label=name)
    axes.set_xticks(range(len(kinds)), kinds)
    axes.set_yscale("log")
    axes.set_ylabel("tasks per second (median; log scale)")
    axes.set_title("Drain throughput, %s" % title)
    axes.legend(fontsize="small", ncols=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
