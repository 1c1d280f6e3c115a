"""Reading files that an attacker may have planted: regular files only, never through a link."""
