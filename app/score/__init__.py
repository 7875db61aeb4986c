"""Bulk scoring of files (`python -m app.score`): the service's task pipeline over JSON Lines, CSV
or Parquet rows, on the local process or a Ray cluster. See `__main__.py` for the command."""
