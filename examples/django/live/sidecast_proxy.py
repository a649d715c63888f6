"""The two endpoints sidecast calls where only Django knows the answer.

sidecast --auth proxy posts {"token": ..., "cookie": ...} to the auth endpoint and expects
{"user_id": "42", "username": "alice"}; --permissions-url posts {"user_ids": [...]} and expects
{"users": {"42": {"is_active": true, "content_type_ids": [3, 7]}, "43": null}}. Both carry
"Authorization: Bearer <SIDECAST_PROXY_SECRET>". A refusal is 401 (or 403); anything but 200 tells
sidecast to have the client try again later.
"""

import hmac
import json
from http.cookies import SimpleCookie
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

# sidecast asks about at most this many users at once.
MAX_USER_IDS = 500


def _authorized(request: HttpRequest) -> bool:
    secret = getattr(settings, "SIDECAST_PROXY_SECRET", "")
    header = request.headers.get("Authorization", "")
    return bool(secret) and hmac.compare_digest(header.encode(), f"Bearer {secret}".encode())


def _body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _session_user(request: HttpRequest, cookie_header: str) -> AbstractBaseUser | None:
    """The user the session cookie names, exactly as a request carrying it would see them."""
    cookies = SimpleCookie()
    cookies.load(cookie_header)
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return None
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(morsel.value)
    user = get_user(request)
    return user if user.is_authenticated else None


def _token_user(request: HttpRequest, token: str) -> AbstractBaseUser | None:
    """The user the token names, through AUTHENTICATION_BACKENDS (django-sesame's, here)."""
    return authenticate(request, sesame=token)


@csrf_exempt
@require_POST
def authenticate_client(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        return HttpResponse(status=403)
    body = _body(request)
    if body is None:
        return HttpResponse(status=400)
    token, cookie = body.get("token") or "", body.get("cookie") or ""
    if not isinstance(token, str) or not isinstance(cookie, str):
        return HttpResponse(status=400)
    user = (_session_user(request, cookie) if cookie else None) or (
        _token_user(request, token) if token else None
    )
    if user is None or not user.is_active:
        return HttpResponse(status=401)
    return JsonResponse({"user_id": str(user.pk), "username": user.get_username()})


def content_type_ids(user: AbstractBaseUser) -> list[int]:
    """The guide's get_content_types(): asked of user.has_perm, so every backend has its say."""
    return sorted(
        ct.id
        for ct in ContentType.objects.all()
        if user.has_perm(f"{ct.app_label}.view_{ct.model}")
        or user.has_perm(f"{ct.app_label}.change_{ct.model}")
    )


@csrf_exempt
@require_POST
def permissions(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        return HttpResponse(status=403)
    body = _body(request)
    user_ids = body.get("user_ids") if body is not None else None
    if (
        not isinstance(user_ids, list)
        or len(user_ids) > MAX_USER_IDS
        or not all(isinstance(user_id, str) for user_id in user_ids)
    ):
        return HttpResponse(status=400)
    model = get_user_model()
    users: dict[str, dict[str, Any] | None] = {}
    for user_id in user_ids:
        try:
            user = model._default_manager.get(pk=user_id)
        except (model.DoesNotExist, ValidationError, ValueError, TypeError):
            users[user_id] = None
            continue
        users[user_id] = {"is_active": user.is_active, "content_type_ids": content_type_ids(user)}
    return JsonResponse({"users": users})
