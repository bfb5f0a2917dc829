"""Train, fine-tune and evaluate: the jobs that turn a recipe into a run directory and read it back."""
