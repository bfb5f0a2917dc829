"""TensorBoard for every run: writing (tensorboardX), reading, the board server, run tables, reports.

Writing is layered: ``stats`` (device-side statistics) and ``summaries`` / ``figures`` / ``images``
/ ``hparams`` (pure functions value -> summary) under ``sink`` (the background event writer) under
``tensorboard.TensorBoardLogger`` (the training callback). Reading is ``events``; on top of it sit
``runs_table``, ``report`` and ``board``; ``zerotune.cli.track`` registers their subcommands.
"""
