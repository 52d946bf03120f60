"""User Service routes: registration, login/logout, profile, password reset, account
deletion and export, and the admin's user management (/api/admin/users).

Routes are plain `def`: password hashing and database calls run in the thread pool,
never on the event loop.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from booking_app.api import schemas
from booking_app.api.deps import client_ip, get_token_hash, require_admin, require_user
from booking_app.api.errors import request_locale
from booking_app.api.schemas import problem_responses
from booking_app.i18n import N_, translate
from booking_app.services import accounts, auth
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api", responses=problem_responses(422, 503))

USER_PROBLEMS = problem_responses(401)
ADMIN_PROBLEMS = problem_responses(401, 403, 404)


def _user(user) -> schemas.UserOut:
    return schemas.UserOut.model_validate(user)


def _admin_user(user) -> schemas.AdminUserOut:
    return schemas.AdminUserOut.model_validate(user)


# --- sign-up, sign-in -------------------------------------------------------------------

@router.post("/users/register", status_code=201, response_model=schemas.UserOut, tags=["users"],
             summary="Create a customer account", responses=problem_responses(409, 429))
def register(body: schemas.RegisterIn, request: Request) -> schemas.UserOut:
    user = accounts.register(username=body.username, email=body.email, password=body.password,
                             full_name=body.full_name, phone=body.phone, locale=body.locale, timezone=body.timezone,
                             ip=client_ip(request))
    return _user(user)


@router.post("/users/login", response_model=schemas.TokenOut, tags=["users"],
             summary="Sign in with username or email; returns a bearer token",
             responses=problem_responses(401, 429))
def login(body: schemas.LoginIn, request: Request) -> schemas.TokenOut:
    result = auth.login(identifier=body.username, password=body.password, ip=client_ip(request))
    return schemas.TokenOut(access_token=result.access_token, token_type="bearer", expires_in=result.expires_in)


@router.post("/users/logout", status_code=204, response_class=Response, tags=["users"],
             summary="Revoke the token of this request", responses=USER_PROBLEMS)
def logout(request: Request, actor: Actor = Depends(require_user)) -> Response:
    token_hash = get_token_hash(request)
    if token_hash:
        auth.logout(token_hash=token_hash, actor_id=actor.id)
    return Response(status_code=204)


# --- profile ----------------------------------------------------------------------------

@router.get("/users/profile", response_model=schemas.UserOut, tags=["users"], summary="My profile",
            responses=USER_PROBLEMS)
def get_profile(actor: Actor = Depends(require_user)) -> schemas.UserOut:
    return _user(accounts.get_profile(actor=actor))


@router.put("/users/profile", response_model=schemas.UserOut, tags=["users"],
            summary="Update my profile (a new email or password needs current_password)",
            responses=problem_responses(401, 409, 429))
def update_profile(body: schemas.ProfileUpdateIn, request: Request,
                   actor: Actor = Depends(require_user)) -> schemas.UserOut:
    given = body.model_fields_set
    changes: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("full_name", "email", "phone", "locale", "timezone", "notify_email", "notify_sms", "password")
        if name in given
    }
    user = accounts.update_profile(actor=actor, current_password=body.current_password,
                                   keep_token_hash=get_token_hash(request), **changes)
    return _user(user)


@router.delete("/users/profile", status_code=204, response_class=Response, tags=["users"],
               summary="Delete my account (needs current_password); personal data is erased",
               responses=problem_responses(401, 409, 429))
def delete_profile(body: schemas.AccountDeleteIn, actor: Actor = Depends(require_user)) -> Response:
    accounts.delete_account(actor=actor, current_password=body.current_password)
    return Response(status_code=204)


@router.get("/users/profile/export", tags=["users"], summary="Export all my data as JSON (GDPR)",
            responses={200: {"description": "The user's data", "content": {"application/json": {
                "schema": {"type": "object", "additionalProperties": True}}}}, **USER_PROBLEMS})
def export_profile(actor: Actor = Depends(require_user)) -> JSONResponse:
    data = accounts.export_user_data(actor=actor)
    return JSONResponse(data, headers={"Content-Disposition": 'attachment; filename="my-data.json"'})


# --- password reset -----------------------------------------------------------------------

@router.post("/users/password-reset", status_code=202, response_model=schemas.AcceptedOut, tags=["users"],
             summary="Email a single-use password reset link (same answer whether or not the address exists)",
             responses=problem_responses(429))
def password_reset_request(body: schemas.PasswordResetRequestIn, request: Request) -> schemas.AcceptedOut:
    # no token needed (nor checked): whoever forgot a password may hold an expired one
    auth.request_password_reset(email=body.email, ip=client_ip(request))
    locale = request_locale(request)
    return schemas.AcceptedOut(detail=translate(
        N_("If an account uses this address, we have sent it a link to choose a new password."), locale))


@router.post("/users/password-reset/confirm", status_code=204, response_class=Response, tags=["users"],
             summary="Choose a new password with the emailed token (works once; signs out everywhere)")
def password_reset_confirm(body: schemas.PasswordResetConfirmIn) -> Response:
    auth.confirm_password_reset(token=body.token, new_password=body.password)
    return Response(status_code=204)


# --- administration -------------------------------------------------------------------------

@router.get("/admin/users", response_model=schemas.UserPageOut, tags=["admin"],
            summary="List users (search, role and status filters, pagination)", responses=ADMIN_PROBLEMS)
def admin_list_users(
    actor: Actor = Depends(require_admin),
    q: schemas.SingleLineStr | None = Query(default=None, max_length=200, description="matches username, email or name"),
    role: schemas.RoleName | None = Query(default=None),
    active: bool | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=accounts.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> schemas.UserPageOut:
    page = accounts.list_users(actor=actor, q=q, role=role, active=active, limit=limit, offset=offset)
    return schemas.UserPageOut(items=[_admin_user(u) for u in page.items], total=page.total)


@router.get("/admin/users/{id}", response_model=schemas.AdminUserOut, tags=["admin"], summary="One user",
            responses=ADMIN_PROBLEMS)
def admin_get_user(id: schemas.IdPath, actor: Actor = Depends(require_admin)) -> schemas.AdminUserOut:  # noqa: A002
    return _admin_user(accounts.get_user(actor=actor, user_id=id))


@router.put("/admin/users/{id}/role", response_model=schemas.AdminUserOut, tags=["admin"],
            summary="Change a user's role", responses={**ADMIN_PROBLEMS, **problem_responses(409)})
def admin_set_role(id: schemas.IdPath, body: schemas.RoleIn, actor: Actor = Depends(require_admin)) -> schemas.AdminUserOut:  # noqa: A002
    return _admin_user(accounts.set_role(actor=actor, user_id=id, role=body.role))


@router.put("/admin/users/{id}/active", response_model=schemas.AdminUserOut, tags=["admin"],
            summary="Deactivate (revokes every token) or reactivate a user",
            responses={**ADMIN_PROBLEMS, **problem_responses(409)})
def admin_set_active(id: schemas.IdPath, body: schemas.ActiveIn = Body(), actor: Actor = Depends(require_admin)) -> schemas.AdminUserOut:  # noqa: A002
    return _admin_user(accounts.set_active(actor=actor, user_id=id, active=body.active))


@router.get("/admin/users/{id}/audit", response_model=schemas.AuditPageOut, tags=["admin"],
            summary="A user's audit trail, newest first", responses=ADMIN_PROBLEMS)
def admin_user_audit(
    id: schemas.IdPath,  # noqa: A002
    actor: Actor = Depends(require_admin),
    limit: int = Query(default=50, ge=1, le=accounts.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> schemas.AuditPageOut:
    rows, total = accounts.user_audit(actor=actor, user_id=id, limit=limit, offset=offset)
    return schemas.AuditPageOut(items=[schemas.AuditEventOut.model_validate(r) for r in rows], total=total)
