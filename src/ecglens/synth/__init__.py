"""The synthetic 12-lead cohort: beat model, class mechanisms, evidence masks (records with known ground truth)."""
