from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import BigUser

admin.site.register(BigUser, UserAdmin)
