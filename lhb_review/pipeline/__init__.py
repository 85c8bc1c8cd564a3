"""The AI pipeline's side: orders it sends, API tokens, webhook deliveries, the old approval store's importer."""
