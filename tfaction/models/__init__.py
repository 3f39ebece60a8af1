"""tfaction.models."""
