"""MQTT ingest: messages are queued by the network thread and stored in batches by a worker.

``table.HANDLERS`` maps each topic kind to its small handler; the worker commits a batch and
only then publishes the acks the handlers asked for.
"""
