"""The package version (one place; read by hatch and by every manifest weightwatch writes)."""

__version__ = "0.1.0"
