"""Tuning tools that read or run a recipe: the learning-rate range test (`lr_find.py`) and the profiler (`profile.py`)."""
