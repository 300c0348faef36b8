"""What routes a request: routes, profiles, preferences, endpoints, targets, key tests."""
