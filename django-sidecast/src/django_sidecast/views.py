"""The token endpoint of the browser client's getToken()."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_http_methods
from sesame.utils import get_token

from .conf import sidecast_settings


@require_http_methods(["GET", "POST"])
def token(request: HttpRequest) -> JsonResponse:
    """A fresh token for the logged-in user: {"token": "...", "url": "ws://..."}.

    GET needs no CSRF token: the answer can only be read by a page of this origin and minting a
    token changes nothing. POST goes through CsrfViewMiddleware like any other. Anonymous
    visitors get 401 rather than a redirect to the login page, which fetch() would follow.
    """
    if not request.user.is_authenticated:
        response = JsonResponse({"error": "not_authenticated"}, status=401)
    else:
        config = sidecast_settings()
        response = JsonResponse(
            {"token": get_token(request.user, scope=config.scope), "url": config.url}
        )
    # Neither the browser nor a proxy may keep a token: each request mints a new one.
    response["Cache-Control"] = "no-store"
    return response
