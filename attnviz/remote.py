"""Model runs on a Ray cluster: a proxy with a model's ``run(**inputs) -> AttentionResult``, backed by a pool of
named Ray actors per model.

Several processes (Streamlit replicas behind a load balancer, notebooks) that connect to the same cluster share one
pool per model: the actors are named ``attnviz-model:<model>:<i>`` in the namespace :data:`NAMESPACE` and fetched
with ``get_if_exists=True``; they are detached, so they outlive the process that happened to create them (stop
them with :func:`shutdown_pool` or ``ray stop``). A dead actor is restarted by Ray and the run it was doing is tried
again (``max_restarts``, ``max_task_retries``). Each actor holds one loaded model and runs one call at a time; a
proxy sends each call to the actor it has the fewest calls waiting on.

Nothing here runs at import: Ray is imported when a proxy is made.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from attnviz.models import model_info
from attnviz.models.base import AttentionModel
from attnviz.result import AttentionResult

log = logging.getLogger(__name__)

NAMESPACE = "attnviz"
ACTOR_PREFIX = "attnviz-model"
MAX_TASK_RETRIES = 2
"""Times a call is sent again after its actor died (model runs have no side effects)."""
START_TIMEOUT_S = 180.0
"""Seconds a new proxy waits for its pool's first actor to start and load the model (a first SmolLM2 load takes
~20 s). An actor the cluster has no free CPU for never starts: the proxy says so instead of waiting for ever."""
_ATTRIBUTE_TYPES = (str, int, float, bool, type(None), tuple, list, dict)


class ModelActor:
    """The remote side: one loaded model (``attnviz.load_model``) in a Ray worker process."""

    def __init__(self, name: str) -> None:
        from attnviz.models import load_model

        self.model = load_model(name)

    def info(self) -> dict[str, Any]:
        """The model's public plain attributes (name, kind, n_layers, n_heads, description, causal, limits...)."""
        attrs = {k: getattr(self.model, k) for k in ("name", "kind", "n_layers", "n_heads", "description", "causal")}
        attrs.update({k: v for k, v in vars(self.model).items()
                      if not k.startswith("_") and isinstance(v, _ATTRIBUTE_TYPES)})
        return attrs

    def call(self, method: str, args: tuple, kwargs: dict) -> Any:
        """``model.<method>(*args, **kwargs)`` for a public method."""
        if method.startswith("_") or not callable(getattr(self.model, method, None)):
            raise ValueError(f"{self.model.name} has no method {method!r}")
        return getattr(self.model, method)(*args, **kwargs)


class RemoteModel(AttentionModel):
    """A model whose runs happen on a named actor pool of a Ray cluster; the same ``run`` as the model itself.

    Args:
        name: a model name or a local model directory (the workers load it).
        size: actors of the pool this proxy uses (``<model>:0`` .. ``<model>:size-1``; created when missing).
        num_cpus: CPUs each actor reserves (its torch threads follow it).
        timeout: seconds to wait for the first actor to be ready (:data:`START_TIMEOUT_S`).
        env: environment variables of the actors it creates (``ATTNVIZ_MODELS_DIR``, say).

    Raises:
        ValueError: an unknown model name (a local directory is looked for on the cluster), or what the model
            raised while loading.
        RuntimeError: no actor was ready within ``timeout`` (no free CPU on the cluster, say).
    """

    def __init__(self, name: str, size: int = 2, num_cpus: float = 1, timeout: float = START_TIMEOUT_S,
                 env: dict[str, str] | None = None) -> None:
        import ray

        if size < 1:
            raise ValueError(f"the pool needs at least one actor, got size={size}")
        if not Path(name).expanduser().is_dir():
            model_info(name)  # an unknown name: the registry's message here, not an actor dying on the cluster
        if not ray.is_initialized():
            raise ValueError("Ray is not connected: call attnviz.remote.connect(address) first")
        cls = ray.remote(ModelActor)
        self.actors = [cls.options(name=actor_name(name, i), namespace=NAMESPACE, get_if_exists=True,
                                   lifetime="detached", num_cpus=num_cpus, max_restarts=-1,
                                   max_task_retries=MAX_TASK_RETRIES,
                                   runtime_env={"env_vars": env} if env else None).remote(name)
                        for i in range(size)]
        self._waiting = [0] * size
        self._lock = threading.Lock()
        try:
            self.attributes: dict[str, Any] = _unwrap(lambda: ray.get(self.actors[0].info.remote(), timeout=timeout))
        except ray.exceptions.GetTimeoutError:
            raise RuntimeError(
                f"no Ray worker for {name} was ready within {timeout:.0f} s: the cluster may have no free CPU for "
                f"its pool ({size} actor(s) of {num_cpus:g} CPU each, one pool per model)") from None
        """The model's public plain attributes, also set on this proxy (``kind``, ``n_layers``, limits...)."""
        for key, value in self.attributes.items():
            if key not in ("actors", "attributes"):
                setattr(self, key, value)

    def run(self, **inputs: Any) -> AttentionResult:
        """``model.run(**inputs)`` on one of the pool's actors. A ``progress`` callback stays here: it reports to
        this process's page, which an actor cannot reach (the run then shows no progress by layer).

        Raises:
            ValueError: what the model raised for the input (the same message as a local run).
        """
        inputs.pop("progress", None)
        return self.call("run", **inputs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Any public method of the model, run on one of the pool's actors (arguments and result are pickled)."""
        import ray

        with self._lock:
            i = min(range(len(self.actors)), key=self._waiting.__getitem__)
            self._waiting[i] += 1
        try:
            return _unwrap(lambda: ray.get(self.actors[i].call.remote(method, args, kwargs)))
        finally:
            with self._lock:
                self._waiting[i] -= 1


def actor_name(model: str, index: int) -> str:
    """The name of actor ``index`` of ``model``'s pool."""
    return f"{ACTOR_PREFIX}:{model}:{index}"


def connect(address: str) -> None:
    """Connect this process to the Ray cluster at ``address`` (``auto``, ``ray://host:10001``), in
    :data:`NAMESPACE`; nothing when Ray is already initialised.

    Raises:
        ConnectionError: no cluster answered there, or it refused this process (see :func:`init_cluster`).
    """
    import ray

    if not ray.is_initialized():
        init_cluster(address, namespace=NAMESPACE)


def init_cluster(address: str, **kwargs: Any) -> None:
    """``ray.init(address=address, **kwargs)``, quietly; a refused connection says what to check.

    Raises:
        ConnectionError: nothing answers at the address (checked within :data:`CONNECT_TIMEOUT_S` first, as Ray
            itself keeps retrying for minutes); or Ray's own, with a hint: a cluster started by ``ray start``
            (Ray 2.60) asks every process for its token, which Ray sends only with ``RAY_AUTH_MODE=token`` set.
    """
    import ray

    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, **kwargs)
    except ConnectionError as e:
        hint = ("" if os.environ.get("RAY_AUTH_MODE") else
                " If the cluster was started with `ray start`, it asks for its token: set RAY_AUTH_MODE=token, "
                "with the token in ~/.ray/auth_token or RAY_AUTH_TOKEN.")
        raise ConnectionError(f"Cannot connect to the Ray cluster at {address}: {e}.{hint}") from e


CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a cluster's port to answer before Ray is asked to connect (Ray itself retries for minutes)."""


def _check_reachable(address: str) -> None:
    """``ConnectionError`` at once when nothing answers at ``host:port`` (``ray://host:port`` too); ``auto`` and
    addresses without a port are left to Ray."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ConnectionError(f"Cannot connect to the Ray cluster at {address}: nothing answers there ({e}). Is the "
                              "cluster running (ray start), and is the address right?") from e


def shutdown_pool(model: str, size: int) -> int:
    """Kill the actors ``0..size-1`` of ``model``'s pool (those that exist); returns how many were killed."""
    import ray

    killed = 0
    for i in range(size):
        try:
            actor = ray.get_actor(actor_name(model, i), namespace=NAMESPACE)
        except ValueError:
            continue
        ray.kill(actor, no_restart=True)
        killed += 1
    return killed


def _unwrap(get: Any) -> Any:
    """``get()``; an error the model raised in the actor is raised here as itself (a ``ValueError`` stays one)."""
    import ray

    try:
        return get()
    except ray.exceptions.RayTaskError as e:
        cause = e.cause
        if isinstance(cause, Exception):
            raise cause from None
        raise
