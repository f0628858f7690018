"""``python -m parceler`` runs the CLI."""

from parceler.cli import main

main()
