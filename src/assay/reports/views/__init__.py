"""Views: what a renderer shows of a result, every decision made once (rows, order, counts,
titles, which checks block), no markup. The CLI, verdict.md and junit.xml lay out the same view."""
