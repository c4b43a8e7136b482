"""Fixtures shared by the sandbox tests."""
