"""Reading configuration that already exists on a server (`audit`, `import`).

Each reader turns one layer's files into `ReadSetting`s: the value, under the
layer's own name, and where it was read, or where it would go when the
layer's default applies (a missing `proxy_read_timeout` is nginx's 60 s, at
the line of the block that lacks it).
"""
