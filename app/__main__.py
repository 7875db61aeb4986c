"""`python -m app`: serve with uvicorn using the host, port and drain deadline from Settings."""

from __future__ import annotations

import uvicorn

from app.core.settings import Settings


def main(factory: str = "app.main:create_app") -> None:
    """Serve the app that `factory` builds (tests pass their own task set)."""
    settings = Settings()
    uvicorn.run(
        factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our JSON logging, configured by create_app
        access_log=False,
        # SIGTERM: stop accepting, let in-flight requests finish (batchers drain in the lifespan).
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
