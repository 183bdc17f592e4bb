"""The reproduce harness: every paper table/figure as a sweep of runs, aggregated into reports.

`spec` (what a table is), `sweep` (its points), `execute` (running them, resumably),
`aggregate` (mean ± std beside the paper), `report` (Markdown / CSV / docs/reproduction.md),
`plots` (curves with shaded std). The registry of every table lives in `experiments/tables.py`;
the command is `python -m launch.reproduce`.
"""
