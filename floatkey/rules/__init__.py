"""Pure rules of floating licenses: no threads, no I/O, tested on plain data."""
