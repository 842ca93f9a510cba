"""lab: stand up a mutual-TLS lab (two CAs, two nginx servers), verify it, tear it down."""

__version__ = "0.1.0"
