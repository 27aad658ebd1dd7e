"""Modelport operator package."""
