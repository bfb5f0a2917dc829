"""Tuning tools: the learning-rate range test (`lr_find.py`)."""
