"""Modelport api package."""
