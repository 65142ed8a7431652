"""Renderers of saved results (JSON, HTML, notebook). They read result types and never recompute."""
