"""Command specs, parsing of command lines against them, routing and help."""
