"""tfaction.losses."""
