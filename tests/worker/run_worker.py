"""A worker process for the tests: ``python run_worker.py URL SETTINGS_JSON``.

Quick housekeeping (stale release every few tenths of a second), so that the
jobs of a worker killed mid-run come back within the test's time.
"""

from __future__ import annotations

import json
import logging
import sys

import sidequest_sql as sq


def main() -> None:
    url, settings = sys.argv[1], json.loads(sys.argv[2])
    logging.basicConfig(level=logging.WARNING, format="%(process)d %(levelname)s %(message)s")
    logging.getLogger("sidequest_sql.worker").setLevel(logging.INFO)
    queues = settings.pop("queues", ["default"])
    poll_interval = settings.pop("poll_interval", None)
    with sq.create_backend(url) as backend:
        if poll_interval is not None:
            backend.poll_interval = poll_interval
        sq.Worker(backend, queues, **settings).run()


if __name__ == "__main__":
    main()
