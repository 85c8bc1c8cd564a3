"""The benchmark and its instruments; never part of the app that is served."""
