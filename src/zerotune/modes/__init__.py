"""Training modes: what a run learns (supervised, language model, instruction tuning) and how
(fine-tuned from a source, distilled from a teacher). Each mode is one module here that implements
`base.Mode`; `registry.py` lists them, and `pipeline/` asks the modes of a run at each step.
"""
