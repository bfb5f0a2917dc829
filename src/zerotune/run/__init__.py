"""The run directory: its files, atomic writes, and loading a run back for eval, export, serve and generate."""
