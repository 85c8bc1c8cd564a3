"""Request plumbing shared by the views and the API: sign-in, htmx, error pages, headers, faults, logs, metrics."""
