"""Runs that choose their own jobs from the verdicts so far: the extreme double-win sparsity by
bisection over each ladder (search) and seeds added on demand (on_demand)."""
