"""Explore tab (being built in the Explore issue)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gradio as gr

from ui.context import AppContext


@dataclass
class ExploreHandles:
    """What other tabs need from Explore: its model picker and how to list a session's choices."""

    model: gr.Dropdown
    choices: Callable[[str | None], list[str]]


def build_explore_tab(ctx: AppContext) -> ExploreHandles:
    """Build the Explore tab."""
    model = gr.Dropdown(choices=["dcgan-faces-64"], value="dcgan-faces-64", label="Model")
    return ExploreHandles(model=model, choices=lambda _session: ["dcgan-faces-64"])
