"""Training in several processes on torch.distributed: launch (``--nproc``), process group, DDP, sharding.

Every rank runs the same `zerotune train`; rank 0 alone writes the run directory. See docs/distributed.md.
"""
