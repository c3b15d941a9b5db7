"""Training and evaluation: the loop (resume, DDP, AMP), its resume state, and evaluation of bundles."""
