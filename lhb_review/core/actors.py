"""Who acts, from where: passed into every service call instead of request or current_user."""
from __future__ import annotations

from dataclasses import dataclass

SYSTEM_EMAIL = "system@littleherolabs.com"


@dataclass(frozen=True)
class Actor:
    email: str
    ip: str | None = None
    user_agent: str | None = None
    is_admin: bool = False
    kind: str = "user"  # user, token or system

    @classmethod
    def system(cls, name: str = SYSTEM_EMAIL) -> "Actor":
        return cls(email=name, kind="system", is_admin=False)
