"""Readers for public dataset layouts, used by `tfaction.data.convert`."""
