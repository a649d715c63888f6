from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django_sidecast.conf import sidecast_settings


@login_required
def index(request):
    # The template's two sidecast tags render the first token and connect the client.
    return render(request, "live/index.html")


def session(request):
    # No token and no login_required: the browser's session cookie goes with the WebSocket
    # upgrade and sidecast (--auth session) reads it. Logged out, the page still loads and
    # its connection is refused.
    return render(request, "live/session.html", {"sidecast_url": sidecast_settings().url})
