"""{% sidecast_token %}, {% sidecast_notifications %} and {% sidecast_connect %}."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.context import Context
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import SafeString
from sesame.utils import get_token

from ..conf import sidecast_settings

register = template.Library()


def _token_for(context: Context) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return str(get_token(user, scope=sidecast_settings().scope))


@register.simple_tag(takes_context=True)
def sidecast_token(context: Context) -> str:
    """A fresh django-sesame token for the current user ("" when nobody is logged in)."""
    return _token_for(context)


@register.simple_tag
def sidecast_notifications() -> SafeString:
    """The connection state and a list that {% sidecast_connect %} fills with events."""
    return SafeString(render_to_string("sidecast/notifications.html"))


@register.simple_tag(takes_context=True)
def sidecast_connect(context: Context, url: str = "", protocol: str = "") -> SafeString:
    """Loads the client and connects it: the first token comes with the page, every reconnection
    asks the token view for a fresh one. Events are dispatched on `document` as
    `sidecast:event` (detail: {event, raw}) and states as `sidecast:state`."""
    config = sidecast_settings()
    options: dict[str, Any] = {
        "url": url or config.url,
        "protocol": protocol or config.protocol,
        "tokenUrl": reverse("sidecast:token"),
        "token": _token_for(context),
    }
    return SafeString(
        render_to_string(
            "sidecast/connect.html",
            {"options": options, "client_url": static("sidecast/index.js")},
        )
    )
