"""CLI command groups. Each module defines `register(subparsers)`; see checks/cli.py.

Helpers shared by the groups (database URL, output format) come from checks.cli:
`from checks.cli import add_database_option, database_url_from, EXIT_OK, EXIT_ERROR, EXIT_DRIFT`.
"""
