"""The dialects that ship with sidequest_sql, one module each.

``postgres`` is the reference; ``sqlite`` the embedded default; ``mysql``
serves MySQL 8 and MariaDB. They are imported only when a URL asks for them,
so their drivers stay optional.
"""
