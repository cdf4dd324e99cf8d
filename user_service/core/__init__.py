"""Foundations of the User Service: settings, password hashing and token signing, database wiring.

Imports only the kit, the contracts and third-party libraries, never another folder of the
service.
"""
