"""The web dashboard: server-rendered pages (Jinja2, autoescaped) under ``/`` of the one HTTP
server, signed in with Slack, Discord or a one-time console link (docs/dashboard.md)."""
