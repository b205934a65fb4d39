"""The click command-line interface: thin wrappers over the library."""
