"""The metadata database: typed tables (``tables``) and engine/session handling (``session``)."""
