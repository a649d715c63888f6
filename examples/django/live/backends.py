"""A rule-based permission, as projects with custom authentication backends have them."""

from typing import Any

from django.contrib.auth.backends import BaseBackend

# Librarians, by their address, may view every book without being given the permission.
LIBRARY_DOMAIN = "@library.example"
LIBRARIAN_PERMS = frozenset({"catalog.view_book"})


class LibrarianBackend(BaseBackend):
    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        email = getattr(user_obj, "email", "") or ""
        return (
            user_obj.is_active and email.endswith(LIBRARY_DOMAIN) and perm in LIBRARIAN_PERMS
        )
