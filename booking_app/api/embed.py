"""The booking widget's allow-list (issue 25, point 3; docs/embed.md): thin layer over
booking_app/services/embed.py.

- GET /api/embed/origins   the websites allowed to frame the caller's widget (an admin: any
                           provider's, `provider_id`)
- PUT /api/embed/origins   replace that list → 200 with the stored list; 422 for an origin
                           that is not `https://host[:port]` (http only for localhost outside
                           production), a path, a wildcard, or more than 20
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from booking_app.api.deps import require_provider
from booking_app.api.schemas import ApiModel, RequestModel, SingleLineStr, problem_responses
from booking_app.services import embed
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api/embed", tags=["embed"], responses=problem_responses(422, 503))

ProviderQuery = Annotated[int | None, Query(ge=1, le=2**31 - 1,
                                            description="whose list (admins only); default: your own")]


class OriginsIn(RequestModel):
    origins: list[Annotated[SingleLineStr, Field(max_length=embed.MAX_ORIGIN_LENGTH)]] = Field(
        max_length=embed.MAX_ORIGINS, examples=[["https://shop.example.com"]],
        description="websites (scheme://host[:port]) allowed to frame the widget; [] for none")
    provider_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="whose list (admins only)")


class OriginsOut(ApiModel):
    provider_id: int
    origins: list[str]


@router.get("/origins", response_model=OriginsOut, summary="Websites allowed to frame your booking widget",
            responses=problem_responses(401, 403, 404))
def get_origins(provider_id: ProviderQuery = None, actor: Actor = Depends(require_provider)) -> OriginsOut:
    origins = embed.origins_of(actor=actor, provider_id=provider_id)
    return OriginsOut(provider_id=provider_id or actor.id or 0, origins=origins)


@router.put("/origins", response_model=OriginsOut, summary="Replace the websites allowed to frame your booking widget",
            responses=problem_responses(401, 403, 404))
def put_origins(body: OriginsIn, actor: Actor = Depends(require_provider)) -> OriginsOut:
    origins = embed.set_origins(actor=actor, origins=body.origins, provider_id=body.provider_id)
    return OriginsOut(provider_id=body.provider_id or actor.id or 0, origins=origins)
