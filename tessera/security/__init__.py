"""Secrets at rest and tokens."""
