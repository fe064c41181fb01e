"""Views of a campaign: the progress chart (more to come: HTML report, dashboard)."""
