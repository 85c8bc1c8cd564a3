"""`flask` command groups beyond the basic ones in cli.py."""
