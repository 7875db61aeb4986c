"""Real-process entry for tests: `python -c "from app.__main__ import main;
main('tests.support.echo_app:create')"` serves the echo task with Settings from the environment,
through the same uvicorn configuration as `python -m app`."""

from __future__ import annotations

from fastapi import FastAPI

from app.main import create_app


def create() -> FastAPI:
    return create_app(task_packages={"echo": "tests.support.echo"})
