"""provision: configuration management and provisioning for the national fleet."""

__version__ = "0.1.0"
