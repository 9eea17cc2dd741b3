"""Summaries, report.md and plots: ``evaluate``/``demo`` and ``compare`` loop over the techniques."""
