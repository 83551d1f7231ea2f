"""The UI's page routes, one module per area; thin: they call the hub's services."""
