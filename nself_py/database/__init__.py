"""Database: connections, migration state, apply and roll back, backups, housekeeping."""
