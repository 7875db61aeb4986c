"""Peer serving frameworks (LitServe, BentoML, Ray Serve) serving the same bundles through the
project's own pipeline, for the side-by-side benchmark. They run from `.venv-peers` (created by
`bench/peers/setup.sh`), never from the service's environment."""
