"""A run directory loaded back: its model and data rebuilt for eval, export, serve and generate
(`load.py`), and the checkpoint a resume continues from, checked before its first step (`integrity.py`)."""
