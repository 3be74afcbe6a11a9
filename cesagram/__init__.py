"""The ``cesagram`` command: a thin dispatcher over the project's packages."""
