import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class UuidUser(AbstractUser):
    """A user whose primary key is a UUID: django-sesame packs it as 16 bytes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
