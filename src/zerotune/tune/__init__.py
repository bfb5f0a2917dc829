"""Tuning tools that read or run a recipe: the profiler (profile.py)."""
