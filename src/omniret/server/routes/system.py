"""``GET /healthz``, ``GET /models`` (from the encoder registry) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omniret.server.models import Health, ModelOut, ModelsResponse
from omniret.server.routes.common import service

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Health)
def healthz(request: Request) -> Health:
    """Liveness and a little state: the item count proves the store answers."""
    svc = service(request)
    return Health(status="ok", items=svc.index.store.count(), model=svc.index.encoder.name,
                  writes_enabled=svc.settings.writes_enabled and not svc.index.store.read_only)


@router.get("/models", response_model=ModelsResponse)
def models(request: Request) -> ModelsResponse:
    """The model backends this installation knows (the encoder registry) and the index's model."""
    from omniret.encoders.registry import entries

    return ModelsResponse(models=[ModelOut(prefix=e.prefix, example=e.example, description=e.description)
                                  for e in entries()], current=service(request).index.encoder.name)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Request counts, latencies and the item count in the Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
