"""Standards as data: controls, checks, parameters, and the parser that builds them."""
