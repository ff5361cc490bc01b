"""The quickstart's jobs: a worker imports them by module (``mailer``) and name."""

from __future__ import annotations

import sidequest_sql as sq


class SendEmail(sq.Job):
    """Pretends to send an email; the return value becomes the job's result."""

    def __init__(self, sender: str) -> None:
        self.sender = sender

    def run(self, to: str) -> dict[str, str]:
        if to.endswith("@bounce.example.com") and self.job.attempt == 1:
            raise ConnectionError(f"{to}: mail server busy")  # retried: the second attempt goes through
        if to.endswith("@invalid"):
            raise sq.Fail(f"{to} is not an address")  # failed at once, no retry
        return {"sent_to": to, "from": self.sender}
