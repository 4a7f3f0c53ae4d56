"""Every routing write: configuration, tasks, reservations, workers, assignment."""
