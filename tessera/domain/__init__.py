"""Domain objects: plain data, no I/O. Providers produce them, inventory stores them."""
