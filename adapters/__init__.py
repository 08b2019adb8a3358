"""Platform adapters (Slack, Discord, console): platform events in, core messages out."""
