"""Run specifications: everything a run needs, built before it starts."""
