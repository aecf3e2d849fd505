"""The Distribution API client. Knows nothing of transports or sync."""
