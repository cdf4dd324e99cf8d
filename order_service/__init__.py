"""The Order Service: orders of verified users, placed, listed, read and cancelled."""
