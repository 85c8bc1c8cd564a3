"""What every service shares: the unit of work, the clock, actors, audit rows, errors, paging, stages, storage."""
