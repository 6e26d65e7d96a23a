"""Where everything goes on a collage: pure geometry from the photos' aspect ratios.

The rule, in one place:

* **Arrangement.** The geometric mean of every shown photo's aspect ratio (width / height,
  after EXIF orientation) decides: above 1 (landscape) the two sides are *stacked*, before
  on top; otherwise (portrait or square) they stand *side by side*, before on the left.
  Either way the picture stays near square, which chat apps show largest.
* **Grids.** Both panels have the same size. The side with more photos picks the grid
  (rows × columns) that keeps the whole collage closest to square, an empty cell costing
  as much as a 1.42× stretch (``log`` 0.35). The other side then picks its own grid that
  best fills that panel. Photos are fitted whole inside their cells (nothing cropped:
  the evidence stays complete); an incomplete last row is centred.
* **Bars.** A header bar on top (title, tracking number) and one label bar above each
  panel; text size scales with the collage's longest side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Layout", "Rect", "plan_layout"]

_EMPTY_CELL_COST = 0.35
_ASPECT_RANGE = (0.5, 2.0)  # extreme photos do not stretch the grid further than this


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned box in px: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` as Pillow wants it."""
        return (self.x, self.y, self.x + self.w, self.y + self.h)


@dataclass(frozen=True, slots=True)
class Layout:
    """The planned collage: its size, bars, panels and one cell per shown photo."""

    width: int
    height: int
    stacked: bool
    font_size: int
    header: Rect
    before_label: Rect
    after_label: Rect
    before_panel: Rect
    after_panel: Rect
    before_cells: tuple[Rect, ...]
    after_cells: tuple[Rect, ...]


def _mean_aspect(aspects: Sequence[float]) -> float:
    low, high = _ASPECT_RANGE
    mean = math.exp(sum(math.log(a) for a in aspects) / len(aspects))
    return min(high, max(low, mean))


def _grids(count: int) -> list[tuple[int, int]]:
    """Every (rows, columns) that holds ``count`` cells without a wholly empty row."""
    return [
        (rows, -(-count // rows))
        for rows in range(1, count + 1)
        if -(-count // rows) * (rows - 1) < count
    ]


def _best_grid(count: int, aspect: float, want: float) -> tuple[int, int]:
    """The grid whose panel aspect is closest to ``want`` (log scale), empty cells counting."""

    def cost(grid: tuple[int, int]) -> tuple[float, int]:
        rows, cols = grid
        empty = rows * cols - count
        return (abs(math.log(cols * aspect / rows / want)) + _EMPTY_CELL_COST * empty, rows)

    return min(_grids(count), key=cost)


def plan_layout(before: Sequence[float], after: Sequence[float], *, max_side: int) -> Layout:
    """Plan a collage of photos with these aspect ratios whose longest side is ``max_side``."""
    if not before or not after:
        raise ValueError("a collage needs at least one photo on each side")
    aspect = _mean_aspect([*before, *after])
    stacked = aspect > 1.0
    font_size = max(10, round(max_side * 0.026))
    bar = round(font_size * 2.0)
    gap = max(2, round(max_side * 0.006))
    # The fuller side fixes the panel shape: whole collage as square as possible.
    fuller = before if len(before) >= len(after) else after
    panel_want = 2.0 if stacked else 0.5  # two panels stacked / side by side make a square
    rows, cols = _best_grid(len(fuller), _mean_aspect(fuller), panel_want)
    panel_aspect = cols * _mean_aspect(fuller) / rows
    if stacked:
        fixed_w, fixed_h, across, down = 0, bar + 2 * bar + gap, 1, 2
    else:
        fixed_w, fixed_h, across, down = gap, bar + bar, 2, 1
    # Largest panel such that the collage's longest side is max_side.
    panel_w = (max_side - fixed_w) / across
    if down * panel_w / panel_aspect + fixed_h > max_side:
        panel_w = (max_side - fixed_h) / down * panel_aspect
    panel_w = max(1, math.floor(panel_w))
    panel_h = max(1, math.floor(panel_w / panel_aspect))
    width = across * panel_w + fixed_w
    height = down * panel_h + fixed_h
    header = Rect(0, 0, width, bar)
    if stacked:
        before_label = Rect(0, bar, width, bar)
        before_panel = Rect(0, 2 * bar, panel_w, panel_h)
        after_label = Rect(0, 2 * bar + panel_h + gap, width, bar)
        after_panel = Rect(0, 3 * bar + panel_h + gap, panel_w, panel_h)
    else:
        before_label = Rect(0, bar, panel_w, bar)
        before_panel = Rect(0, 2 * bar, panel_w, panel_h)
        after_label = Rect(panel_w + gap, bar, panel_w, bar)
        after_panel = Rect(panel_w + gap, 2 * bar, panel_w, panel_h)
    return Layout(
        width=width,
        height=height,
        stacked=stacked,
        font_size=font_size,
        header=header,
        before_label=before_label,
        after_label=after_label,
        before_panel=before_panel,
        after_panel=after_panel,
        before_cells=_cells(before_panel, before, panel_aspect, gap),
        after_cells=_cells(after_panel, after, panel_aspect, gap),
    )


def _cells(
    panel: Rect, aspects: Sequence[float], panel_aspect: float, gap: int
) -> tuple[Rect, ...]:
    """One cell per photo, row by row, in a grid that best fills ``panel``."""
    count = len(aspects)
    rows, cols = _best_grid(count, _mean_aspect(aspects), panel_aspect)
    cell_w = (panel.w - (cols - 1) * gap) // cols
    cell_h = (panel.h - (rows - 1) * gap) // rows
    cells: list[Rect] = []
    for index in range(count):
        row, col = divmod(index, cols)
        in_row = min(cols, count - row * cols)
        shift = (cols - in_row) * (cell_w + gap) // 2  # centre an incomplete last row
        cells.append(
            Rect(
                panel.x + shift + col * (cell_w + gap),
                panel.y + row * (cell_h + gap),
                max(1, cell_w),
                max(1, cell_h),
            )
        )
    return tuple(cells)
