"""One file per namespace kind: the ModuleSpec that creates it and checks what it isolates."""
