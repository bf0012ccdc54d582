"""The command line: thin click commands that call one service and render its result."""
