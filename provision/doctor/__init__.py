"""`provision doctor`: checks that the control node has what provision needs."""
