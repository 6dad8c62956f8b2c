"""Personal API tokens for scripts and `provision`: made (shown once), listed, revoked."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from fieldline_backend.gateway.auth import AccountsDep, CurrentUser, NoStore

router = APIRouter(prefix="/api/v1", tags=["tokens"])


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    # Strict: JSON `true` is not 1 day, nor "30" 30 days.
    expires_in_days: StrictInt | None = Field(
        default=None, ge=1, le=3650, description="none: valid until revoked"
    )


class TokenInfo(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: datetime
    expires_at: datetime | None


class NewToken(BaseModel):
    id: int
    name: str
    token: str = Field(description="shown once: store it now; use as 'Authorization: Bearer'")
    created_at: datetime
    expires_at: datetime | None


@router.post("/tokens", status_code=status.HTTP_201_CREATED, dependencies=[NoStore])
def create_token(body: TokenCreate, user: CurrentUser, accounts: AccountsDep) -> NewToken:
    issued = accounts.tokens.issue_personal(user, body.name, body.expires_in_days)
    return NewToken(
        id=issued.id,
        name=body.name,
        token=issued.token,
        created_at=issued.created_at,
        expires_at=issued.expires_at,
    )


@router.get("/tokens")
def list_tokens(user: CurrentUser, accounts: AccountsDep) -> list[TokenInfo]:
    return [TokenInfo(**vars(token)) for token in accounts.tokens.personal_tokens(user)]


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "no such token of yours"}},
)
def revoke_token(token_id: int, user: CurrentUser, accounts: AccountsDep) -> Response:
    if not (1 <= token_id < 2**31) or not accounts.tokens.revoke_personal(user, token_id):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no personal token {token_id} of yours; list them with GET /api/v1/tokens",
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
