"""Modelport runtime package."""
