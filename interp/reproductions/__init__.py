"""Importing this package registers every reproduction (one module per finding)."""
