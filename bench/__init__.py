"""End-to-end benchmark of the service: `python -m bench` (see bench/run.py)."""
