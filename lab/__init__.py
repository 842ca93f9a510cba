"""lab: stand up a mutual-TLS lab (two CAs, two nginx servers), verify it, tear it down.

The version lives once, in pyproject.toml; `lab --version` reads it from the
installed package's metadata."""
