"""`deploygen drill`: the site's real nginx + gunicorn + PostgreSQL stack, slowed down on purpose.

prepare  site -> a loopback copy, every duration scaled by one factor, rendered to a temp dir
stack    start and always stop PostgreSQL, gunicorn (with the probe app) and nginx
probe    the WSGI app with an endpoint that is slow in each layer
scenarios what each slow request should meet first, and what it met
"""
