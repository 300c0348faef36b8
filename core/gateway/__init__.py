"""One request's walk: admission, the fallback chain, retries, timeouts, continuation."""
