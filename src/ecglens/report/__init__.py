"""Rendering: ECG paper figures, tables and self-contained HTML reports."""
