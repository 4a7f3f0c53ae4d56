"""Domain writes of the messaging engine; see the modules for each area."""
