"""The contract suite every dialect must pass, shipped as a pytest plugin.

Run it against any database a registered dialect serves::

    pytest --pyargs sidequest_sql.testing --sidequest-url postgresql://…/scratch
    SIDEQUEST_CONTRACT_URL=postgresql://…/scratch pytest --pyargs sidequest_sql.testing

The suite empties the sidequest tables of that database: point it at a
scratch database. A project's own tests reuse it by importing the suite into
a test module and overriding the ``sidequest_url`` fixture.
"""

from .clock import ManualClock

URL_VARIABLE = "SIDEQUEST_CONTRACT_URL"
"""Where the suite finds its database when ``--sidequest-url`` is not given:
an environment variable keeps a password out of the process list."""

__all__ = ["URL_VARIABLE", "ManualClock"]
