"""`deploygen drill`: the site's real nginx + gunicorn + PostgreSQL stack, slowed down on purpose.

prepare  site -> a loopback copy, every duration scaled by one factor, rendered to a temp dir
stack    start and always stop PostgreSQL, gunicorn (with the probe app) and nginx; they die
         with the drill even when it is killed (the parent-death signal)
sweeper  removes the drill's temp folders when the drill is killed
probes   which probe app stands in for the site's app, by its kind (PROBES): what it needs and changes
probe    the Flask probe, a WSGI app with an endpoint that is slow in each layer (also for wsgi sites)
probe_django  the same endpoints as a one-file Django project that imports the rendered settings last
scenarios what each slow request should meet first, and what it met
"""
