from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_sidecast.check import CheckFailed, run_check


class Command(BaseCommand):
    help = (
        "Checks a running sidecast end to end: mints a token for USERNAME, connects, publishes a"
        " test event for a content type that user may see and waits for it. Exits 0 only when it"
        " arrived; otherwise says what is wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="A user who may view or change at least one model.")
        parser.add_argument(
            "--url", default=None, help='sidecast\'s URL (default SIDECAST["URL"]).'
        )
        parser.add_argument(
            "--timeout", type=float, default=5.0, help="Seconds to wait at each step (default 5)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = run_check(options["username"], url=options["url"], timeout=options["timeout"])
        except CheckFailed as failure:
            raise CommandError(str(failure)) from None
        self.stdout.write(
            f"OK: sidecast at {result.url} delivered a test event for {result.content_type} to"
            f" {options['username']} in {result.milliseconds:.0f} ms."
        )
