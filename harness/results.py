"""Query the leaderboard (the documented import path; implementation in `harness._results.query`)."""

from __future__ import annotations

from harness._results.curves import load_curves
from harness._results.query import load_leaderboard, pareto_front, parse_objectives, sort_leaderboard

__all__ = ["load_curves", "load_leaderboard", "pareto_front", "parse_objectives", "sort_leaderboard"]
