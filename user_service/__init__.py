"""The User Service: accounts, login, token keys, and the answer to "may this user act?"."""
