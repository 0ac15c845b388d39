"""LinkDesk's durable processes: Temporal workflow definitions, their activities' interfaces and
the client settings. Imports nothing of LinkDesk's but `domain`: the workflow sandbox loads it."""
