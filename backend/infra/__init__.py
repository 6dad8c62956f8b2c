"""Infrastructure ports, each one small interface with a real and an embedded adapter."""
