"""Every state change happens here, one transaction each, with its audit row."""
