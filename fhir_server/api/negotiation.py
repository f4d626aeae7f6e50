"""Content negotiation (R4 http.html#mime-type): JSON in and out; XML answered with 406/415."""

from __future__ import annotations

from functools import lru_cache

from fhir_server.errors import NotAcceptable, UnsupportedMediaType

JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "json", "text/json"}
XML_TYPES = {"application/fhir+xml", "application/xml", "application/xml+fhir", "xml", "text/xml"}
FORM = "application/x-www-form-urlencoded"
JSON_PATCH = "application/json-patch+json"


@lru_cache(maxsize=512)
def response_type(format_param: str | None, accept: str | None) -> str:
    """The media type to answer with; only FHIR JSON is produced."""
    if format_param:
        fmt = format_param.split(";")[0].strip().lower()
        if fmt in JSON_TYPES:
            return "application/fhir+json" if fmt != "application/json" else "application/json"
        raise NotAcceptable(f"_format '{format_param}' is not supported; use json",
                            f"_format '{format_param}' không được hỗ trợ; hãy dùng json", expression="_format")
    if not accept:
        return "application/fhir+json"
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media in offered:
        if media in ("application/fhir+json", "*/*", "application/*", "application/json+fhir"):
            return "application/fhir+json"
        if media in ("application/json", "text/json"):
            return "application/json"
        if media in ("text/html", "text/*", "text/plain"):
            continue
    if any(m in XML_TYPES for m in offered):
        raise NotAcceptable("Only application/fhir+json is produced by this server (XML is not supported)",
                            "Máy chủ chỉ trả về application/fhir+json (không hỗ trợ XML)")
    # Browsers send text/html first; JSON is still the most useful answer.
    return "application/fhir+json"


def check_request_type(content_type: str | None, method: str, is_search_post: bool) -> str | None:
    """Validate the request's Content-Type; returns the bare media type."""
    if not content_type:
        return None
    media = content_type.split(";")[0].strip().lower()
    if is_search_post and media == FORM:
        return media
    if method == "PATCH" and media == JSON_PATCH:
        return media
    if media in JSON_TYPES:
        return media
    if media in XML_TYPES:
        raise UnsupportedMediaType("XML request bodies are not supported; send application/fhir+json",
                                   "Không hỗ trợ nội dung XML; hãy gửi application/fhir+json")
    raise UnsupportedMediaType(f"Unsupported Content-Type '{media}'", f"Kiểu nội dung không được hỗ trợ '{media}'")
