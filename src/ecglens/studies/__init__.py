"""Analyses that train models and render their reports: the demo, the study's reproduction and the lead study."""
