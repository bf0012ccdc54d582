"""`python -m provision` is the same as the `provision` command."""

from provision.cli.main import main

main()
