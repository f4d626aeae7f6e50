"""Signed, stateless continuation tokens: any worker on any host can continue a page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson

from fhir_server.errors import BadRequest


class TokenSigner:
    def __init__(self, secret: str | bytes, purpose: str, max_age_seconds: int = 24 * 3600) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        self._key = hmac.new(key, purpose.encode(), hashlib.sha256).digest()
        self._max_age = max_age_seconds

    def dumps(self, payload: dict[str, Any]) -> str:
        body = orjson.dumps({"p": payload, "t": int(time.time())})
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")

    def loads(self, token: str) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            body, mac = raw[:-16], raw[-16:]
            if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:16]):
                raise ValueError("bad mac")
            data = orjson.loads(body)
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise BadRequest("The paging link is invalid or was altered; start the query again",
                             "Liên kết phân trang không hợp lệ hoặc đã bị sửa; hãy thực hiện lại truy vấn",
                             expression="_page") from exc
        if time.time() - data["t"] > self._max_age:
            raise BadRequest("The paging link has expired; start the query again",
                             "Liên kết phân trang đã hết hạn; hãy thực hiện lại truy vấn", expression="_page")
        payload: dict[str, Any] = data["p"]
        return payload
