"""The Order Service's foundations: settings and database wiring; imports only the kit."""
