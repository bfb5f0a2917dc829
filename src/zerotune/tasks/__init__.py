"""What a model is trained for: per-task loss, metrics and predictions (classification, regression, language modelling)."""
