"""Command-line adapter."""
