"""CCTV health on the edge: probes (TCP, RTSP, HTTP snapshot, ffmpeg frame grab), picture
analysis (frozen, black), a per-camera state with hysteresis and the monitor that runs them.

Kept import-free on purpose: ``thanthien.edge.settings`` imports :mod:`.config` from here,
and nothing in this package may import the settings back.
"""
