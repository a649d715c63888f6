"""Long-lived helper that runs Django commands for the TypeScript tests.

Usage: python django-driver.py PROJECT_DIR  (DJANGO_SETTINGS_MODULE set)

Protocol: one JSON object per stdin line, {"id": 1, "command": "...", "args": {}}, answered by
one JSON line on stdout, {"id": 1, "ok": true, "result": ...} or {"id": 1, "ok": false,
"error": {"type": ..., "message": ..., "traceback": ...}}. Django starts once per process, so a
test pays its start-up once per site instead of once per call. Anything else that writes to
stdout (warnings, print, C libraries) is sent to stderr so it cannot corrupt the protocol.
"""
import json
import os
import sys
import traceback

protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

sys.path.insert(0, os.path.abspath(sys.argv[1]))

import django  # noqa: E402

django.setup()

from django import forms  # noqa: E402
from django.contrib.admin.models import ADDITION, LogEntry  # noqa: E402
from django.contrib.admin.utils import quote  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from sesame.utils import get_token, get_user  # noqa: E402

# Lets django.test.Client record the template context, where the admin keeps form errors.
setup_test_environment()

COMMANDS = {}


def command(name):
    def register(function):
        COMMANDS[name] = function
        return function

    return register


class DriverError(Exception):
    pass


def find_user(username):
    # A fresh instance every time: Django caches permissions on the user object.
    return get_user_model()._default_manager.get_by_natural_key(username)


def find_permission(label):
    app_label, _, codename = label.partition(".")
    try:
        return Permission.objects.get(content_type__app_label=app_label, codename=codename)
    except Permission.DoesNotExist:
        raise DriverError(f"unknown permission {label!r}") from None


def content_type_of(model_label):
    app_label, _, model = model_label.partition(".")
    return ContentType.objects.get(app_label=app_label, model=model.lower())


def last_log_entry_id():
    return LogEntry.objects.aggregate(last=Max("id"))["last"] or 0


@command("ping")
def ping(args):
    return "pong"


@command("migrate")
def migrate(args):
    call_command("migrate", interactive=False, verbosity=0)
    return None


@command("createUser")
def create_user(args):
    User = get_user_model()
    user = User(
        **{User.USERNAME_FIELD: args["username"]},
        email=args.get("email", ""),
        is_superuser=args.get("isSuperuser", False),
        is_staff=args.get("isStaff", False),
        is_active=args.get("isActive", True),
    )
    if args.get("password") is None:
        user.set_unusable_password()
    else:
        user.set_password(args["password"])
    user.save()
    for name in args.get("groups", []):
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    for label in args.get("perms", []):
        user.user_permissions.add(find_permission(label))
    return {"pk": str(user.pk), "username": user.get_username()}


@command("createGroup")
def create_group(args):
    group = Group.objects.get_or_create(name=args["name"])[0]
    for label in args.get("perms", []):
        group.permissions.add(find_permission(label))
    return {"pk": group.pk, "name": group.name}


@command("getToken")
def token_for(args):
    return get_token(find_user(args["username"]), scope=args.get("scope", ""))


@command("getUser")
def user_for(args):
    options = {"scope": args.get("scope", "")}
    if args.get("maxAge") is not None:
        options["max_age"] = args["maxAge"]
    user = get_user(args["token"], **options)
    return None if user is None else user.get_username()


@command("getContentTypes")
def content_types_for(args):
    # The websockets guide's get_content_types(), unchanged in substance.
    user = find_user(args["username"])
    return sorted(
        ct.id
        for ct in ContentType.objects.all()
        if user.has_perm(f"{ct.app_label}.view_{ct.model}")
        or user.has_perm(f"{ct.app_label}.change_{ct.model}")
    )


@command("contentTypeId")
def content_type_id(args):
    return ContentType.objects.get(app_label=args["appLabel"], model=args["model"].lower()).id


@command("setPassword")
def set_password(args):
    user = find_user(args["username"])
    user.set_password(args["password"])
    user.save(update_fields=["password"])
    return None


@command("setActive")
def set_active(args):
    user = find_user(args["username"])
    user.is_active = args["active"]
    user.save(update_fields=["is_active"])
    return None


@command("shell")
def shell(args):
    """Runs Python with `args` in scope; whatever it assigns to `result` is returned."""
    namespace = {"args": args.get("args", {}), "result": None}
    exec(args["code"], namespace)
    return namespace["result"]


# The admin, driven through its real views ---------------------------------------------------


def admin_client(args):
    username = args.get("username")
    if username is None:
        user, created = get_user_model()._default_manager.get_or_create(
            **{get_user_model().USERNAME_FIELD: "admin"},
            defaults={"is_superuser": True, "is_staff": True},
        )
        if created:
            user.set_unusable_password()
            user.save()
    else:
        user = find_user(username)
    headers = {"HTTP_ACCEPT_LANGUAGE": args["language"]} if args.get("language") else {}
    client = Client(**headers)
    client.force_login(user)
    return client


def admin_url(model_label, view, *url_args):
    app_label, _, model = model_label.partition(".")
    return reverse(f"admin:{app_label}_{model.lower()}_{view}", args=url_args)


def post_values(data):
    """JSON values to what a browser would submit for them."""
    values = {}
    for name, value in data.items():
        if value is False or value is None:
            continue
        if value is True:
            values[name] = "on"
        elif isinstance(value, list):
            values[name] = [str(item) for item in value]
        else:
            values[name] = str(value)
    return values


def widget_values(widget, name, value, values):
    """Adds what `widget` would submit for `value` under `name`."""
    while hasattr(widget, "widget"):  # RelatedFieldWidgetWrapper and friends
        widget = widget.widget
    if isinstance(widget, forms.MultiWidget):
        parts = value if isinstance(value, (list, tuple)) else widget.decompress(value)
        for sub, suffix, part in zip(widget.widgets, widget.widgets_names, parts):
            widget_values(sub, name + suffix, part, values)
    elif isinstance(widget, forms.CheckboxInput):
        if widget.check_test(value):
            values[name] = "on"
    else:
        formatted = widget.format_value(value)
        values[name] = "" if formatted is None else formatted


def current_values(form):
    """What the admin's change form would submit if the user only pressed Save."""
    values = {}
    for bound in form:
        if bound.field.disabled:
            continue
        widget_values(bound.field.widget, bound.html_name, bound.value(), values)
        # Fields with a callable default (date_joined) also carry their initial value in a
        # hidden input; without it Django reports them as changed.
        if bound.field.show_hidden_initial:
            hidden = bound.field.hidden_widget()
            widget_values(hidden, bound.html_initial_name, bound.value(), values)
    return values


def expect_redirect(response, action):
    if response.status_code == 302:
        return
    detail = f"HTTP {response.status_code}"
    context = response.context
    if context is not None and "adminform" in context:
        errors = context["adminform"].form.errors.get_json_data()
        detail = json.dumps(errors)
    elif context is not None and "form" in context:  # the password change form
        detail = json.dumps(context["form"].errors.get_json_data())
    raise DriverError(f"admin {action} failed: {detail}")


@command("adminAdd")
def admin_add(args):
    client = admin_client(args)
    before = last_log_entry_id()
    response = client.post(
        admin_url(args["model"], "add"), {**post_values(args.get("data", {})), "_save": "Save"}
    )
    expect_redirect(response, "add")
    entry = (
        LogEntry.objects.filter(
            id__gt=before, action_flag=ADDITION, content_type=content_type_of(args["model"])
        )
        .order_by("-id")
        .first()
    )
    if entry is None:
        raise DriverError("the admin saved the object but logged no addition")
    return entry.object_id


@command("adminChange")
def admin_change(args):
    client = admin_client(args)
    url = admin_url(args["model"], "change", quote(args["pk"]))
    page = client.get(url)
    if page.status_code != 200:
        raise DriverError(f"admin change form: HTTP {page.status_code}")
    data = current_values(page.context["adminform"].form)
    # False unticks a box: a browser sends nothing for it, so the current "on" must go.
    for name, value in args["data"].items():
        if value is False or value is None:
            data.pop(name, None)
    data.update(post_values(args["data"]))
    response = client.post(url, {**data, "_save": "Save"})
    expect_redirect(response, "change")
    return str(args["pk"])


@command("adminDelete")
def admin_delete(args):
    client = admin_client(args)
    response = client.post(admin_url(args["model"], "delete", quote(args["pk"])), {"post": "yes"})
    expect_redirect(response, "delete")
    return str(args["pk"])


@command("adminDeleteSelected")
def admin_delete_selected(args):
    """The changelist's bulk "Delete selected" action."""
    client = admin_client(args)
    pks = [str(pk) for pk in args["pks"]]
    response = client.post(
        admin_url(args["model"], "changelist"),
        {"action": "delete_selected", "_selected_action": pks, "post": "yes"},
    )
    expect_redirect(response, "delete selected")
    return len(pks)


@command("adminPasswordChange")
def admin_password_change(args):
    """The admin's "Change password" form of one user (args["pk"]), as a superuser posts it."""
    client = admin_client(args)
    # UserAdmin names this URL auth_user_password_change whatever the user model.
    url = reverse("admin:auth_user_password_change", args=(quote(args["pk"]),))
    password = args["password"]
    # usable_password: Django 5.1+ asks whether the password stays usable; older ones ignore it.
    data = {"password1": password, "password2": password, "usable_password": "true"}
    expect_redirect(client.post(url, data), "password change")
    return str(args["pk"])


def answer(line):
    request = {}
    try:
        request = json.loads(line)
        function = COMMANDS.get(request.get("command"))
        if function is None:
            raise DriverError(f"unknown command {request.get('command')!r}")
        return {"id": request.get("id"), "ok": True, "result": function(request.get("args") or {})}
    except Exception as error:  # every failure goes back to the test, the process lives on
        return {
            "id": request.get("id"),
            "ok": False,
            "error": {
                "type": type(error).__name__,
                "message": str(error),
                "traceback": traceback.format_exc(),
            },
        }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(line)
        protocol.write(json.dumps(reply, default=str) + "\n")
    # Stdin closed: the test is done with this site.


if __name__ == "__main__":
    main()
