"""The token view and the template tags, through Django's test client and template engine."""

from __future__ import annotations

import json
import re

from django.template import engines
from django.test import Client, RequestFactory
from sesame.utils import get_user

from .conftest import make_user


def test_the_token_view_gives_a_logged_in_user_a_fresh_token_that_is_never_cached() -> None:
    user = make_user()
    client = Client()
    client.force_login(user)
    for method in (client.get, client.post):
        response = method("/sidecast/token/")
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        body = response.json()
        assert get_user(body["token"]) == user
        assert body["url"] == "ws://127.0.0.1:8888/"


def test_the_token_view_answers_401_to_anonymous_visitors_instead_of_a_login_redirect() -> None:
    response = Client().get("/sidecast/token/")
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated"}
    assert response["Cache-Control"] == "no-store"


def test_a_post_without_a_csrf_token_is_refused_like_any_other_post() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user())
    assert client.post("/sidecast/token/").status_code == 403
    assert client.get("/sidecast/token/").status_code == 200


def test_other_methods_are_refused() -> None:
    client = Client()
    client.force_login(make_user())
    assert client.put("/sidecast/token/").status_code == 405


def render(user: object | None) -> str:
    request = RequestFactory().get("/live/")
    if user is not None:
        request.user = user  # type: ignore[assignment]
    else:
        from django.contrib.auth.models import AnonymousUser

        request.user = AnonymousUser()
    template = engines["django"].get_template("live.html")
    return template.render({}, request)


def test_the_tags_render_a_token_and_a_client_connected_to_the_token_view() -> None:
    user = make_user()
    page = render(user)
    token = re.search(r'<p id="token">([^<]*)</p>', page)
    assert token is not None and get_user(token.group(1)) == user
    options = re.search(
        r'<script id="sidecast-options" type="application/json">(.*?)</script>', page
    )
    assert options is not None
    parsed = json.loads(options.group(1))
    assert parsed["tokenUrl"] == "/sidecast/token/"
    assert parsed["url"] == "ws://127.0.0.1:8888/"
    assert parsed["protocol"] == "guide"
    assert get_user(parsed["token"]) == user
    assert "import { createClient } from '/static/sidecast/index.js';" in page
    assert '<ul id="sidecast-events"></ul>' in page


def test_an_anonymous_visitor_gets_no_token() -> None:
    page = render(None)
    assert '<p id="token"></p>' in page
    options = re.search(r'type="application/json">(.*?)</script>', page)
    assert options is not None and json.loads(options.group(1))["token"] == ""
