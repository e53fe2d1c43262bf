"""The embedded local platform: Temporal dev server, registry and Traefik on 127.0.0.1."""
