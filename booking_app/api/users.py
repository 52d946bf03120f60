"""User Service routes: registration, login (with the two-factor step) and logout, profile,
two-factor enrolment, one's sessions, password reset, account deletion and export, and the
admin's user management (/api/admin/users).

Sensitive admin calls accept `X-Reauth: <password or code>` when the admin's sign-in is not
recent (services/sessions.py); without either they answer 401 `reauth_required`.

Routes are plain `def`: password hashing and database calls run in the thread pool,
never on the event loop.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

import booking_app.api.schemas as schemas
from pydantic import Field

from booking_app.api.deps import (
    REAUTH_HEADER,
    client_ip,
    get_token_hash,
    is_enrolment_only,
    require_admin,
    require_user,
)
from booking_app.api.errors import request_locale
from booking_app.api.schemas import problem_responses
from booking_app.i18n import N_, translate
from booking_app.services import accounts, auth, mfa, sessions
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput

router = APIRouter(prefix="/api", responses=problem_responses(422, 503))

USER_PROBLEMS = problem_responses(401)
ADMIN_PROBLEMS = problem_responses(401, 403, 404)


class LoginOut(schemas.TokenOut):
    mfa_enrolment_required: bool = Field(
        default=False, description="true: an enrolment-only token (REQUIRE_2FA_FOR); it works only for "
        "/api/users/profile/2fa and /api/users/profile/2fa/confirm until two-factor sign-in is on")


class MfaLoginIn(schemas.RequestModel):
    challenge: schemas.SingleLineStr = Field(min_length=1, max_length=100)
    code: schemas.SingleLineStr = Field(min_length=1, max_length=mfa.MAX_CODE_INPUT,
                                        description="6-digit code or a recovery code")


class MfaBeginIn(schemas.RequestModel):
    password: schemas.SecretText | None = Field(default=None, max_length=128,
                                                description="not needed with an enrolment-only token")


class MfaEnrolmentOut(schemas.ApiModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class MfaCodeIn(schemas.RequestModel):
    code: schemas.SingleLineStr = Field(min_length=1, max_length=mfa.MAX_CODE_INPUT)


class MfaDisableIn(schemas.RequestModel):
    password: schemas.SecretText = Field(min_length=1, max_length=128)
    code: schemas.SingleLineStr = Field(min_length=1, max_length=mfa.MAX_CODE_INPUT)


class RecoveryCodesOut(schemas.ApiModel):
    recovery_codes: list[str]


class MfaStatusOut(schemas.ApiModel):
    enabled: bool
    enabled_at: schemas.UtcDateTime | None = None
    recovery_codes_left: int


class SessionOut(schemas.ApiModel):
    id: int
    device: str
    ip: str | None = None
    created_at: schemas.UtcDateTime
    last_seen_at: schemas.UtcDateTime | None = None
    expires_at: schemas.UtcDateTime
    current: bool


class SessionListOut(schemas.ApiModel):
    items: list[SessionOut]


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


def _login_out(result: auth.LoginResult) -> LoginOut:
    return LoginOut(access_token=result.access_token, token_type="bearer", expires_in=result.expires_in,
                    mfa_enrolment_required=result.mfa_enrolment_required)


@router.post("/users/login", response_model=LoginOut, tags=["users"],
             summary="Sign in with username or email; returns a bearer token (401 `mfa_required` "
                     "with a `challenge` when a code is due)",
             responses=problem_responses(401, 429))
def login(body: schemas.LoginIn, request: Request) -> LoginOut:
    result = auth.login(identifier=body.username, password=body.password, ip=client_ip(request),
                        user_agent=request.headers.get("user-agent", ""))
    return _login_out(result)


@router.post("/users/login/mfa", response_model=LoginOut, tags=["users"],
             summary="Second sign-in step: the challenge of `mfa_required` and a code (or a recovery code)",
             responses=problem_responses(401, 429))
def login_mfa(body: MfaLoginIn, request: Request) -> LoginOut:
    result = auth.login_mfa(challenge=body.challenge, code=body.code, ip=client_ip(request),
                            user_agent=request.headers.get("user-agent", ""))
    return _login_out(result)


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


# --- two-factor sign-in, sessions ---------------------------------------------------------

@router.get("/users/profile/2fa", response_model=MfaStatusOut, tags=["users"],
            summary="Whether my two-factor sign-in is on", responses=USER_PROBLEMS)
def mfa_status(actor: Actor = Depends(require_user)) -> MfaStatusOut:
    return MfaStatusOut(**mfa.status(actor=actor))


@router.post("/users/profile/2fa", status_code=201, response_model=MfaEnrolmentOut, tags=["users"],
             summary="Start two-factor enrolment (needs password): the secret, its otpauth URI and a QR code "
                     "(SVG); not active until confirmed", responses=problem_responses(401, 409, 429))
def mfa_begin(body: MfaBeginIn, request: Request, actor: Actor = Depends(require_user)) -> MfaEnrolmentOut:
    enrolment = mfa.begin_enrolment(actor=actor, password=body.password,
                                    enrolment_token=is_enrolment_only(request))
    return MfaEnrolmentOut(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg)


@router.post("/users/profile/2fa/confirm", response_model=RecoveryCodesOut, tags=["users"],
             summary="Turn two-factor sign-in on with a first code; returns ten recovery codes (shown once)",
             responses=problem_responses(401, 409, 429))
def mfa_confirm(body: MfaCodeIn, request: Request, actor: Actor = Depends(require_user)) -> RecoveryCodesOut:
    codes = mfa.confirm_enrolment(actor=actor, code=body.code, token_hash=get_token_hash(request))
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/users/profile/2fa/recovery-codes", response_model=RecoveryCodesOut, tags=["users"],
             summary="Replace my recovery codes (needs a current code); the old ones stop working",
             responses=problem_responses(401, 429))
def mfa_recovery_codes(body: MfaCodeIn, actor: Actor = Depends(require_user)) -> RecoveryCodesOut:
    return RecoveryCodesOut(recovery_codes=mfa.new_recovery_codes_for(actor=actor, code=body.code))


@router.delete("/users/profile/2fa", status_code=204, response_class=Response, tags=["users"],
               summary="Turn two-factor sign-in off (needs password and a code)",
               responses=problem_responses(401, 409, 429))
def mfa_disable(body: MfaDisableIn, actor: Actor = Depends(require_user)) -> Response:
    mfa.disable(actor=actor, password=body.password, code=body.code)
    return Response(status_code=204)


@router.get("/users/sessions", response_model=SessionListOut, tags=["users"],
            summary="My active sessions (device, IP, last seen); `current` is this one", responses=USER_PROBLEMS)
def list_sessions(actor: Actor = Depends(require_user)) -> SessionListOut:
    return SessionListOut(items=[SessionOut.model_validate(x) for x in sessions.list_sessions(actor=actor)])


@router.delete("/users/sessions", status_code=204, response_class=Response, tags=["users"],
               summary="Sign out all my other sessions (`others=true`; this one stays)", responses=USER_PROBLEMS)
def revoke_other_sessions(others: bool = Query(description="must be true"),
                          actor: Actor = Depends(require_user)) -> Response:
    if not others:
        raise InvalidInput(N_("The input is not valid."), field="others")
    sessions.revoke_others(actor=actor)
    return Response(status_code=204)


@router.delete("/users/sessions/{id}", status_code=204, response_class=Response, tags=["users"],
               summary="Sign out one of my sessions (`others=true`: every other one instead)",
               responses=problem_responses(401, 404))
def revoke_session(id: schemas.IdPath, others: bool = Query(default=False),  # noqa: A002
                   actor: Actor = Depends(require_user)) -> Response:
    if others:
        sessions.revoke_others(actor=actor)
    else:
        sessions.revoke_session(actor=actor, session_id=id)
    return Response(status_code=204)


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
            summary="Change a user's role (re-authenticated: a recent sign-in or X-Reauth)",
            responses={**ADMIN_PROBLEMS, **problem_responses(409, 429)})
def admin_set_role(id: schemas.IdPath, body: schemas.RoleIn, actor: Actor = Depends(require_admin),  # noqa: A002
                   x_reauth: str | None = REAUTH_HEADER) -> schemas.AdminUserOut:  # noqa: ARG001
    return _admin_user(accounts.set_role(actor=actor, user_id=id, role=body.role))


@router.put("/admin/users/{id}/active", response_model=schemas.AdminUserOut, tags=["admin"],
            summary="Deactivate (revokes every token; re-authenticated) or reactivate a user",
            responses={**ADMIN_PROBLEMS, **problem_responses(409, 429)})
def admin_set_active(id: schemas.IdPath, body: schemas.ActiveIn = Body(), actor: Actor = Depends(require_admin),  # noqa: A002
                     x_reauth: str | None = REAUTH_HEADER) -> schemas.AdminUserOut:  # noqa: ARG001  # noqa: ARG001
    return _admin_user(accounts.set_active(actor=actor, user_id=id, active=body.active))


@router.delete("/admin/users/{id}/2fa", status_code=204, response_class=Response, tags=["admin"],
               summary="Turn off a user's two-factor sign-in (re-authenticated; the user's sessions end and "
                       "they are told by email)", responses={**ADMIN_PROBLEMS, **problem_responses(409, 429)})
def admin_reset_2fa(id: schemas.IdPath, actor: Actor = Depends(require_admin),  # noqa: A002
                    x_reauth: str | None = REAUTH_HEADER) -> Response:  # noqa: ARG001
    accounts.reset_2fa(actor=actor, user_id=id)
    return Response(status_code=204)


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
