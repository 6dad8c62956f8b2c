"""User accounts: admins create them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, StrictBool, field_validator

from fieldline_backend.gateway.auth import AccountsDep, AdminUser
from fieldline_backend.gateway.users import UserExists, check_password, check_username

router = APIRouter(prefix="/api/v1", tags=["users"])


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    password: str
    is_admin: StrictBool = False  # JSON true/false only, not "yes" or 1

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return check_username(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_password(value)


class UserOut(BaseModel):
    id: int
    username: str
    is_admin: bool


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses={
        401: {"description": "not signed in"},
        403: {"description": "not an admin"},
        409: {"description": "the username is taken"},
    },
)
def create_user(body: UserCreate, admin: AdminUser, accounts: AccountsDep) -> UserOut:
    try:
        user = accounts.users.create(body.username, body.password, admin=body.is_admin)
    except UserExists as error:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"user {body.username!r} exists already; pick another name"
        ) from error
    return UserOut(id=user.id, username=user.username, is_admin=user.is_admin)
