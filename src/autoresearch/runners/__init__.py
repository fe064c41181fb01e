"""Runners execute a command for an experiment and return a ``RunOutcome``."""
