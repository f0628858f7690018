"""``python -m parceler`` runs the CLI."""

from parceler.cli import main

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    main()
