"""tfaction.serving."""
