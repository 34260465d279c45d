"""Repository-wide pytest plugins (tests/ and notebooks/ under nbval)."""

pytest_plugins = ["course_tools.nbval_timeout"]
