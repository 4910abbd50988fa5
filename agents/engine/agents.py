"""The content engine's agents (filled in below)."""
