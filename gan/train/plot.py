"""A dependency-free loss plot (PIL only) for the CLI's run folder: D and G losses against steps."""

from __future__ import annotations

from PIL import Image, ImageDraw

from gan.train.metrics import COVERAGE_KEYS, LOSS_KEYS, METRIC_KEYS

COLOURS = dict(zip((*METRIC_KEYS, "kid", *COVERAGE_KEYS),
                   [(220, 60, 50), (40, 110, 200), (30, 150, 80), (200, 140, 20), (120, 60, 170), (20, 140, 150),
                    (150, 150, 150)], strict=True))


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average, so that a long noisy run stays readable."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def metrics_plot(history: list[dict], keys: tuple[str, ...] = LOSS_KEYS, size: tuple[int, int] = (720, 360),
                 title: str = "losses", x: str = "step", colours: dict | None = None) -> Image.Image:
    """Line plot of `keys` from records (dicts with `x`, 'step' by default), smoothed over ~1% of them;
    each key in its `colours` entry (default: the metrics' own colours)."""
    colours = {**COLOURS, **(colours or {})}
    w, h, m = size[0], size[1], 40
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    rows = [r for r in history if all(k in r and r[k] == r[k] for k in keys)]  # drop NaN rows and rows without them
    if len(rows) < 2:
        draw.text((m, h // 2), "not enough steps to plot", fill="black")
        return img
    steps = [r[x] for r in rows]
    window = max(1, len(rows) // 100)
    series = {k: _smooth([float(r[k]) for r in rows], window) for k in keys}
    low, high = min(min(v) for v in series.values()), max(max(v) for v in series.values())
    high = high if high > low else low + 1.0
    sx = lambda s: m + (s - steps[0]) / max(steps[-1] - steps[0], 1) * (w - 2 * m)  # noqa: E731
    sy = lambda v: h - m - (v - low) / (high - low) * (h - 2 * m)  # noqa: E731
    draw.rectangle([m, m, w - m, h - m], outline=(160, 160, 160))
    for k, values in series.items():
        draw.line([(sx(s), sy(v)) for s, v in zip(steps, values)], fill=colours.get(k, "black"), width=2)
    draw.text((m, 10), title + (f" (moving average over {window} {x}s)" if window > 1 else ""), fill="black")
    draw.text((m, h - m + 8), f"{x} {steps[0]}", fill="black")
    draw.text((w - m - 70, h - m + 8), f"{x} {steps[-1]}", fill="black")
    draw.text((4, m), f"{high:.2f}", fill="black")
    draw.text((4, h - m - 10), f"{low:.2f}", fill="black")
    for i, k in enumerate(keys):
        draw.text((w - m - 90, m + 6 + 14 * i), k, fill=colours.get(k, "black"))
    return img
