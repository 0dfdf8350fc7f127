"""The emulator's error answers: LoopBack's envelope, or Signzy's v2 product envelope."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError"]


class ApiError(Exception):
    """An answer in LoopBack's error envelope; ``v2``: Signzy's product envelope ``{name, status, message}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        name: str = "Error",
        headers: dict[str, str] | None = None,
        v2: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        if v2:
            self.envelope: dict[str, Any] = {"name": name, "status": status, "message": message}
        else:
            self.envelope = {"statusCode": status, "name": name, "message": message}
        if code:
            self.envelope["code"] = code
