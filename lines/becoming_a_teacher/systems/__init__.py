"""Student record systems: the universities' own systems, clients of the service line."""
