"""tfaction.ops."""
