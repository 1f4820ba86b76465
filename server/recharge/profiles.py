"""User profiles per store, for 003's `personal`. This service does not own users:
the copy here is kept by an operator or the user service through
`python -m server user-profile set` (docs/recharge.md)."""

from __future__ import annotations

from collections.abc import Callable

from server.platform.errors import Violations
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork
from server.recharge.tables import UserProfileRow
from server.recharge.views import UserProfileView

# Field -> default, in the order 003 shows them.
DEFAULTS = {
    "mobile": "",
    "nick_name": "",
    "avatar_id": 0,
    "gender": "未知",
    "address_id": 0,
    "points": 0,
    "grade_id": 0,
    "platform": "",
    "last_login_time": 0,
}
_LENGTHS = {"mobile": 32, "nick_name": 64, "gender": 8, "platform": 32}


class UserProfiles:
    def __init__(self, uow_factory: Callable[[], UnitOfWork]):
        self._uow = uow_factory

    def get(self, user_id: int, store_id: int) -> UserProfileView | None:
        with self._uow() as uow:
            row = uow.session.get(UserProfileRow, (user_id, store_id))
            return None if row is None else UserProfileView.of(row)

    def save(self, user_id: int, store_id: int, **changes) -> UserProfileView:
        """Creates or updates one profile; fields not given keep their value (or the default)."""
        v = Violations()
        if user_id <= 0:
            v.add("user_id", "The user_id must be a user id.")
        if store_id <= 0:
            v.add("store_id", "The store_id must be a store id.")
        for name, value in changes.items():
            if name not in DEFAULTS:
                v.add(name, "Not a profile field.")
            elif isinstance(DEFAULTS[name], int) and (not isinstance(value, int) or value < 0):
                v.add(name, f"The {name} must be a whole number >= 0.")
            elif isinstance(DEFAULTS[name], str) and (not isinstance(value, str) or len(value) > _LENGTHS[name]):
                v.add(name, f"The {name} must be text of at most {_LENGTHS[name]} characters.")
        v.raise_if_any()
        with self._uow() as uow:
            now = naive_now()
            uow.session.execute(  # first save creates it; concurrent first saves both succeed
                uow.insert(UserProfileRow).values(user_id=user_id, store_id=store_id, updated_at=now, **DEFAULTS)
                .on_conflict_do_nothing(index_elements=["user_id", "store_id"])
            )
            row = uow.session.get(UserProfileRow, (user_id, store_id), with_for_update=True, populate_existing=True)
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = now
            uow.commit()
            return UserProfileView.of(row)

