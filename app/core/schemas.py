"""Bodies of the operational endpoints on the service port (GET /healthz, /readyz), typed so that
generated clients parse them like any other answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthStatus(BaseModel):
    status: Literal["ok"] = Field(description="Always `ok`: the process answers.")


class ReadinessStatus(BaseModel):
    status: Literal["ready", "not ready"] = Field(
        description="`ready` (200) once every worker has loaded and warmed its models; `not ready` "
        "(503) during start-up and while shutting down."
    )
    models: list[str] = Field(description="The models this worker serves, as `name@version`.")
