"""LinkDesk's durable processes: Temporal workflow definitions, client settings and the worker."""
