"""The data plane: decision workers. Imports nothing from adserver.control."""
