"""Services: keyword-only functions over a session; they raise ``ModelportError`` subclasses."""
