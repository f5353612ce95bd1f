"""`python -m checks …` from the repository root, without installing the package."""
from checks.cli import main

main()
