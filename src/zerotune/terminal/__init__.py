"""What commands print in a terminal or into a pipe."""
