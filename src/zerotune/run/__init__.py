"""The run directory's files: their names, atomic writes, checked reading, checksums and the lock."""
