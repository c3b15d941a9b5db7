"""Label mapping tables and the multi-hot target vectors built from them."""

from ecglens.labels.mapping import DROP, PROFILES, LabelMap, MappedLabels, MappingRow, load_label_map

__all__ = ["DROP", "PROFILES", "LabelMap", "MappedLabels", "MappingRow", "load_label_map"]
