"""Virtual hardware for running the real edge agents without a Raspberry Pi: mock pins,
WAV-sink speakers, loopback camera servers, the citizen model and the fleet runner."""
