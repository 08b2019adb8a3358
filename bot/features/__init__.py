"""Features: each registers its commands, actions, forms and schedules with the core."""
