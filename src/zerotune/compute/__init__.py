"""Where the computation runs: OpenMP's wait policy, CPU threads and devices."""
