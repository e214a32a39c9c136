"""Query the leaderboard (the documented import path; implementation in `harness._query`)."""

from __future__ import annotations

from harness._curves import load_curves
from harness._query import load_leaderboard, pareto_front, parse_objectives, sort_leaderboard

__all__ = ["load_curves", "load_leaderboard", "pareto_front", "parse_objectives", "sort_leaderboard"]
