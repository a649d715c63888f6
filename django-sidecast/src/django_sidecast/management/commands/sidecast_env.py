from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_sidecast.environment import env_file_text, sidecast_environment


class Command(BaseCommand):
    help = (
        "Writes the environment sidecast serve needs, derived from these settings, to an env file"
        " readable by its owner only (mode 0600), or prints it (--print; secrets only with"
        " --show-secrets)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output",
            "-o",
            default="sidecast.env",
            help="The env file to write (default sidecast.env); it is replaced if it exists.",
        )
        parser.add_argument(
            "--print",
            action="store_true",
            help="Print to standard output instead of writing a file.",
        )
        parser.add_argument(
            "--show-secrets",
            action="store_true",
            help="With --print: print the secret key, its fallbacks, SESAME_KEY and passwords.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        variables = sidecast_environment()
        if options["print"]:
            self.stdout.write(
                env_file_text(variables, show_secrets=options["show_secrets"]), ending=""
            )
            return
        path = options["output"]
        # Created 0600 from the start: a chmod after writing would leave a moment of 0644.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(env_file_text(variables, show_secrets=True))
        self.stdout.write(f"Wrote {len(variables)} variables to {path} (mode 0600).")
