"""`flask` command groups of the feature areas, each registered from cli.register()."""
