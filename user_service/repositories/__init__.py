"""SQL of the User Service (SQLAlchemy Core statements) and nothing else; never commits."""
