"""Which model answers a request: the served bundles of each task, their defaults, and the
request's `model` field ("name" or "name@version") resolved against them.

A worker loads every bundle found under MODEL_DIR (app/main.py) and builds one `ModelCatalog`
from them; it never changes while the worker runs. A reload (SIGHUP) starts new workers, which
build their own (app/core/supervisor.py). Every accepted spelling of a model is a key of one
dict per task, so choosing costs a dict lookup per request.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from app.core.bundle import version_key
from app.core.errors import InputError, invalid

if TYPE_CHECKING:
    from app.core.service import ModelService

log = logging.getLogger("app")

MODEL_FIELD = "model"
# The ASGI scope key under which the route leaves the (name, version) it served, for the
# access log and the per-model metrics (app/core/middleware.py).
SCOPE_KEY = "lstm.model"

# `"model": "<name or name@version>"` in a raw JSON body. Inside a JSON string every quote is
# escaped, so this matches the top-level field; the only other places it can match (an object
# key elsewhere, a key ending in an escaped quote) are fields every request schema forbids, so
# such a body is a 422 whatever the door decides. Escapes in the value are not decoded: such a
# body is left to the route.
_MODEL_IN_BODY = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_MODEL_KEY = b'"model"'


MODEL_DOC = (
    'Which served model answers: `"name"` (its default version) or `"name@version"` (exactly that '
    "version). Omitted: this endpoint's default model. The values this instance accepts are this "
    "field's `enum` here and the `models` of GET /models; any other (an unknown name or version, or a "
    "model of another task) is refused with 422 naming this field and listing them. Every answer's "
    "`model` and `version` say which one answered."
)


def model_field() -> Any:
    """The optional `model` field every task's request body has."""
    return Field(None, max_length=200, description=MODEL_DOC)


def model_in_body(body: bytes) -> tuple[bool, str | None]:
    """(known, choice) for a raw request body without parsing it: (True, None) when the body
    does not name a model (the task's default), (True, "name[@version]") when it names one
    plainly, (False, None) when that cannot be told cheaply (the route will parse it)."""
    if _MODEL_KEY not in body:
        return True, None
    found = _MODEL_IN_BODY.findall(body)
    if len(found) != 1:
        return False, None
    try:
        return True, found[0].decode()
    except UnicodeDecodeError:
        return False, None


class ModelCatalog:
    """The served models of each task and how a request's `model` field picks one.

    `services` maps "name@version" to its service. Per task, a request without `model` gets the
    task's default; `"name"` gets that model's default version; `"name@version"` exactly that
    version. Defaults: DEFAULT_MODELS and MODEL_VERSIONS (`defaults`, `pinned`), else the model
    named after the task and the highest version."""

    def __init__(
        self,
        services: Mapping[str, ModelService[Any, Any]],
        defaults: Mapping[str, str] | None = None,
        pinned: Mapping[str, str] | None = None,
        skipped: Iterable[str] = (),
    ) -> None:
        self.services: dict[str, ModelService[Any, Any]] = dict(services)
        self.skipped = list(skipped)
        self._served = Counter(s.task_name for s in self.services.values())
        # task -> accepted spelling -> service; the key None is the task's default.
        self._table: dict[str, dict[str | None, ModelService[Any, Any]]] = {}
        versions: dict[str, list[ModelService[Any, Any]]] = {}
        for service in self.services.values():
            versions.setdefault(service.name, []).append(service)
        for name, group in sorted(versions.items()):
            group.sort(key=lambda s: version_key(s.version))
            task = group[0].task_name
            chosen = group[-1]
            pin = (pinned or {}).get(name)
            if pin is not None:
                match = [s for s in group if s.version == pin]
                if match:
                    chosen = match[0]
                else:
                    log.error(
                        "MODEL_VERSIONS pins a version that is not served; serving the highest",
                        extra={"model": name, "pinned": pin, "served": [s.version for s in group]},
                    )
            spellings = self._table.setdefault(task, {})
            spellings[name] = chosen
            for s in group:
                spellings[s.key] = s
        for task, spellings in self._table.items():
            wanted = (defaults or {}).get(task)
            default = spellings.get(wanted) if wanted else None
            if wanted and default is None:
                log.error(
                    "DEFAULT_MODELS names a model this task does not serve; using the usual default",
                    extra={"task": task, "wanted": wanted, "served": self.choices(task)},
                )
            spellings[None] = default or spellings.get(task) or spellings[min(self.names(task))]

    @property
    def tasks(self) -> list[str]:
        return sorted(self._table)

    def names(self, task: str) -> list[str]:
        """The served model names of `task`."""
        return sorted(k for k in self._table.get(task, {}) if k is not None and "@" not in k)

    def choices(self, task: str) -> list[str]:
        """Every value `model` may take on `task`'s endpoint: each name, then each name@version."""
        keys = [k for k in self._table.get(task, {}) if k is not None]
        return sorted(keys, key=lambda k: ("@" in k, k))

    def served(self, task: str) -> int:
        """How many models (versions counted apart) serve `task`."""
        return self._served.get(task, 0)

    def default(self, task: str) -> ModelService[Any, Any] | None:
        return self._table.get(task, {}).get(None)

    def is_default_version(self, service: ModelService[Any, Any]) -> bool:
        return self._table.get(service.task_name, {}).get(service.name) is service

    def lookup(self, task: str, model: str | None) -> ModelService[Any, Any] | None:
        """The service `model` picks on `task`'s endpoint, or None when it picks none."""
        return self._table.get(task, {}).get(model)

    def choose(self, task: str, model: str | None) -> ModelService[Any, Any]:
        """`lookup`, or a 422 naming the field `model` and listing what this endpoint serves."""
        found = self.lookup(task, model)
        if found is not None:
            return found
        served = self.choices(task)
        listed = ", ".join(served) or "nothing"
        name = (model or "").partition("@")[0]
        elsewhere = [t for t in self.tasks if t != task and self.lookup(t, name) is not None]
        if model is None:
            why = f"no model serves /{task} in this instance"
        elif elsewhere:
            why = f"model {name!r} is a {elsewhere[0]} model (POST /{elsewhere[0]}), not a {task} model"
        elif name in self.names(task):
            versions = [k.partition("@")[2] for k in served if k.startswith(name + "@")]
            why = f"model {name!r} has no version {model.partition('@')[2]!r} here (served: {versions})"
        else:
            why = f"unknown model {model!r}"
        raise _choice_error(f"{why}; /{task} serves: {listed}", model, served)


def _choice_error(msg: str, model: str | None, served: list[str]) -> InputError:
    return invalid(("body", MODEL_FIELD), msg, "model_not_served", value=model, served=served)
