from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from sesame.utils import get_token


@login_required
def index(request):
    # A new token on every page load: it only has to survive until the
    # WebSocket connection is open (SESAME_MAX_AGE, 30 seconds by default).
    context = {
        "sidecast_token": get_token(request.user),
        "sidecast_url": settings.SIDECAST_URL,
    }
    return render(request, "live/index.html", context)
