"""``python -m sidequest_sql.cli``, the same as the ``sidequest-sql`` script."""

from . import main

if __name__ == "__main__":
    main()
