"""tfaction.evaluation."""
