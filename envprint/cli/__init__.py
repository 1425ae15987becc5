"""The command line: the Typer app and its error boundary, the commands, the CLI's own streams. Each command parses, makes one library call and emits; nothing here is imported by the library."""
