"""The heart's waves: P, QRS and T onsets, peaks and offsets per lead, from cardiologists (LUDB's marks) or
from a delineator (`ecglens.waves.delineate`: the U-Net of `ecglens.waves.net`, or neurokit2), and the
measurements an ECG report prints (`ecglens.waves.measure`). Signal in, frozen marks and measurements out; the
U-Net imports torch only when it runs, and nothing here imports a diagnosis model.
"""
