"""The inventory: what every pool holds, kept in the database and reconciled with the pools."""
