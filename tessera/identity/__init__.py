"""Unified identity: domains, projects, users, roles, tokens, and the policy every route
declares."""
