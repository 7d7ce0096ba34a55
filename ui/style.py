"""Style tab (being built in the Style issue)."""

from __future__ import annotations

import gradio as gr

from ui.context import AppContext


def build_style_tab(ctx: AppContext) -> None:
    """Build the Style tab."""
    gr.Markdown("Neural style transfer.")
