"""Database engine, sessions and schema migrations (SQLite default, PostgreSQL scaled out)."""
