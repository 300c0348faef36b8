"""The only code that talks to providers: litellm calls, HTTP clients, SSE, breakers."""
