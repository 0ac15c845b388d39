"""LinkDesk's Temporal worker process: the request workflow and every activity it calls."""
