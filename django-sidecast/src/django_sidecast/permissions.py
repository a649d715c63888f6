"""Tell sidecast whose permissions changed, so open connections follow at once.

sidecast re-checks its live users on a schedule anyway; these receivers make a change take
effect within a second. Each sends a small JSON message on the control channel
(SIDECAST["CONTROL_CHANNEL"]) once the transaction commits: before the commit sidecast would read
the old rows, and a rolled-back change changed nothing.

    {"type": "users", "ids": ["42"]}   these users changed (or one of their sessions ended)
    {"type": "groups", "ids": ["3"]}   these groups' permissions changed
    {"type": "all"}                    anything may have changed
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.http import HttpRequest

from .publishing import publish_control


def users_changed(pks: Iterable[Any]) -> None:
    ids = [str(pk) for pk in pks]
    if ids:
        publish_control({"type": "users", "ids": ids})


def user_saved(
    sender: type[Model],
    instance: Model,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    # A login only moves last_login, which grants and revokes nothing.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    users_changed([instance.pk])


def user_deleted(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    users_changed([instance.pk])


def logged_out(
    sender: type[Model], request: HttpRequest, user: Model | None, **kwargs: Any
) -> None:
    """Connections opened with this session's cookie close once sidecast finds it gone."""
    if user is None:
        return
    session = getattr(request, "session", None)
    # logout() flushes the session just after this signal, and the message may reach sidecast
    # first: delete it from the database now, as the flush would, so sidecast finds it gone. The
    # data stays readable in memory for other receivers; signed-cookie sessions live in the
    # browser only, so nothing on the server can end them.
    if isinstance(session, DatabaseSessionStore) and session.session_key is not None:
        session.delete()
    users_changed([user.pk])


def members_changed(
    sender: type[Model],
    instance: Any,
    action: str,
    reverse: bool,
    pk_set: set[Any] | None,
    **kwargs: Any,
) -> None:
    """user.groups or user.user_permissions; reverse: group.user_set, permission.user_set."""
    if not reverse and action in ("post_add", "post_remove", "post_clear"):
        users_changed([instance.pk])
    elif reverse and action in ("post_add", "post_remove"):
        users_changed(pk_set or ())
    elif reverse and action == "pre_clear":
        # After the clear nobody is left to name: name them now.
        users_changed(instance.user_set.values_list("pk", flat=True))


def group_permissions_changed(
    sender: type[Model],
    instance: Any,
    action: str,
    reverse: bool,
    pk_set: set[Any] | None,
    **kwargs: Any,
) -> None:
    """group.permissions; reverse: permission.group_set."""
    if not action.startswith("post_"):
        return
    if not reverse:
        publish_control({"type": "groups", "ids": [str(instance.pk)]})
    elif pk_set:
        publish_control({"type": "groups", "ids": [str(pk) for pk in pk_set]})
    else:
        publish_control({"type": "all"})


def group_deleting(sender: type[Group], instance: Group, **kwargs: Any) -> None:
    # The memberships are deleted with the group: name its members while they are there.
    users_changed(instance.user_set.values_list("pk", flat=True))


def permission_deleted(sender: type[Permission], instance: Permission, **kwargs: Any) -> None:
    publish_control({"type": "all"})


def connect_permission_events() -> None:
    user_model = get_user_model()
    uid = "sidecast-permissions"
    post_save.connect(user_saved, sender=user_model, dispatch_uid=uid)
    post_delete.connect(user_deleted, sender=user_model, dispatch_uid=uid)
    user_logged_out.connect(logged_out, dispatch_uid=uid)
    groups = getattr(user_model, "groups", None)
    user_permissions = getattr(user_model, "user_permissions", None)
    # A user model without PermissionsMixin has neither relation.
    if groups is not None:
        m2m_changed.connect(members_changed, sender=groups.through, dispatch_uid=f"{uid}-groups")
    if user_permissions is not None:
        m2m_changed.connect(
            members_changed, sender=user_permissions.through, dispatch_uid=f"{uid}-perms"
        )
    m2m_changed.connect(
        group_permissions_changed, sender=Group.permissions.through, dispatch_uid=uid
    )
    pre_delete.connect(group_deleting, sender=Group, dispatch_uid=uid)
    post_delete.connect(permission_deleted, sender=Permission, dispatch_uid=uid)
