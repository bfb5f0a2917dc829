"""Knowledge distillation (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network").

A distillation is an ordinary run whose config has ``distill.teacher``: the teacher's logits on each
training batch (cached once when the data is not augmented, computed on the fly when it is) become
soft targets at temperature T, mixed with the hard labels by ``distill.alpha``. Eval, export and
serve read the run like any other.
"""
