"""Fixtures of the finkctl tests shared by every module of this folder: ``home`` and
``env`` (a user who registered alice's credentials with a fresh group)."""

from tests.cli.test_finkctl import env, home

__all__ = ["env", "home"]
