"""What a search leaves behind, and how it is read: the typed records (one row per trial, one
curve row per epoch), their Parquet tables, the leaderboard's writes and compaction, queries and
the one ranking, the kept models, constraints, provenance and the results-folder check.

It may import the spec stage (`harness._spec`) and the ground modules; the driver and the
workers import it, never the other way round.
"""
