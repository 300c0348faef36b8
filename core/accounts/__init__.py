"""Who may do what: users, roles and sign-in, gateway tokens, provider keys, secrets."""
