"""Model bundles: a directory with ``model.safetensors`` and ``bundle.json``; loading never unpickles.

`ecglens.bundle.meta` reads and writes the metadata (no torch: ``ecglens models`` lists bundles without it);
`ecglens.bundle.weights` saves and loads the weights.
"""
