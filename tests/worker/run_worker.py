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
    with sq.create_backend(url) as backend:
        sq.Worker(backend, queues, **settings).run()


if __name__ == "__main__":
    main()
