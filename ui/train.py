"""Train tab (being built in the Train issue)."""

from __future__ import annotations

import gradio as gr

from ui.context import AppContext
from ui.explore import ExploreHandles


def build_train_tab(ctx: AppContext, explore: ExploreHandles, tabs: gr.Tabs) -> None:
    """Build the Train tab."""
    gr.Markdown("Train a DCGAN on your own images.")
