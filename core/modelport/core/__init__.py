"""Modelport core package."""
