from django.contrib.auth.models import AbstractUser
from django.db import models


class BigUser(AbstractUser):
    """A user with a 64-bit primary key: django-sesame packs it as 8 bytes."""

    id = models.BigAutoField(primary_key=True)
