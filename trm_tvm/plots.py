"""The one way figures are written: tight layout, 120 dpi PNG, figure closed (reports regenerate them often)."""
from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
