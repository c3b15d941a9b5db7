"""Plumbing with no ECG knowledge: atomic writes, worker pools, progress, CPU threads, torch.distributed."""
