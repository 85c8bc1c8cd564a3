"""Operations: users and sessions, the error log, audit queries, statistics, backups, bootstrap, demo data."""
