"""The /v1 HTTP surface: endpoints, request parsing, response shaping, socket tweaks."""
