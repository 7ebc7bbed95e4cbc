"""Objects users pass into their clients (transports, adapters, http clients) and hooks."""
