"""User accounts (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.api.schemas import PasswordReset, UserCreate, UserOut, UserUpdate
from thanthien.hub.roles import ADMINS
from thanthien.hub.services import users

router = APIRouter(prefix="/users", tags=["users"], dependencies=[allow(*ADMINS)])


@router.get("", response_model=list[UserOut])
def list_users(session: DbSession, actor: CurrentUser) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in users.list_users(session, viewer=actor)]


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(hub: Hub, session: DbSession, actor: CurrentUser, body: UserCreate) -> UserOut:
    user = users.create_user(session, actor=actor, username=body.username, password=body.password,
                             role=body.role, full_name=body.full_name, now=hub.clock(),
                             commune=body.commune)
    session.commit()
    return UserOut.model_validate(user)


@router.patch("/{user_id}", response_model=UserOut,
              summary="Change a user (nobody changes their own role or locks themselves out)")
def update_user(hub: Hub, session: DbSession, actor: CurrentUser, user_id: RowId,
                body: UserUpdate) -> UserOut:
    user = users.update_user(session, actor=actor, user_id=user_id, role=body.role, active=body.active,
                             password=body.password, full_name=body.full_name, now=hub.clock())
    session.commit()
    return UserOut.model_validate(user)


@router.post("/{user_id}/reset-password", response_model=PasswordReset,
             summary="A new random password for another user, shown once")
def reset_password(hub: Hub, session: DbSession, actor: CurrentUser, user_id: RowId) -> PasswordReset:
    user, password = users.reset_password(session, actor=actor, user_id=user_id, now=hub.clock())
    session.commit()
    return PasswordReset(user=UserOut.model_validate(user), password=password)
