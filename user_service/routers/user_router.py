"""HTTP routes for accounts: parse, call one service function, return a declared body."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from servicekit.jsonbody import ExactJsonRoute
from servicekit.web import problem_responses
from user_service.routers.dependencies import Authenticated, State
from user_service.schemas import UserCreate, UserRead, UserUpdate
from user_service.services import deactivation, profile, registration

router = APIRouter(tags=["users"], route_class=ExactJsonRoute)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    operation_id="register_user",
    responses=problem_responses(409),
)
async def register_user(body: UserCreate, state: State) -> UserRead:
    user = await registration.register_user(
        state.new_uow(),
        state.cache,
        state.hasher,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        password_min_length=state.settings.password_min_length,
    )
    return UserRead.model_validate(user)


@router.get("/users/me", operation_id="read_me", responses=problem_responses(401))
async def read_me(caller: Authenticated) -> UserRead:
    user = await profile.read_profile(
        caller.state.profiles,
        user_id=caller.user_id,
        session_epoch=caller.session_epoch,
    )
    return UserRead.model_validate(user)


@router.patch("/users/me", operation_id="update_me", responses=problem_responses(401, 403, 409))
async def update_me(body: UserUpdate, caller: Authenticated) -> UserRead:
    state = caller.state
    user = await profile.update_user(
        state.new_uow(),
        state.cache,
        state.hasher,
        user_id=caller.user_id,
        full_name=body.full_name,
        password=body.password,
        current_password=body.current_password,
        password_min_length=state.settings.password_min_length,
        session_epoch=caller.session_epoch,
    )
    return UserRead.model_validate(user)


@router.delete(
    "/users/me",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deactivate_me",
    responses=problem_responses(401, 409),
)
async def deactivate_me(caller: Authenticated) -> Response:
    state = caller.state
    await deactivation.deactivate_user(
        state.new_uow(), state.cache, user_id=caller.user_id, session_epoch=caller.session_epoch
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
