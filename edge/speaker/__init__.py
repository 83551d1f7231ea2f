"""The village loudspeaker: media cache, prefetcher, amplifier relay and the plan player."""
