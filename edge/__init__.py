"""The edge agent that runs on each Raspberry Pi: rating boxes, speakers and camera probes."""
