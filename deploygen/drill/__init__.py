"""`deploygen drill`: the site's real nginx + app server + PostgreSQL stack, slowed down on purpose.

prepare  site -> a loopback copy, every duration scaled by one factor, rendered to a temp dir
stack    start and always stop PostgreSQL, the app server (gunicorn, or php-fpm for PHP, with
         the probe app) and nginx; they die with the drill even when it is killed (the
         parent-death signal)
sweeper  removes the drill's temp folders when the drill is killed
probes   which probe app stands in for the site's app, by its kind (PROBES): what it needs and changes
probe    the Flask probe, a WSGI app with an endpoint that is slow in each layer (also for wsgi sites)
probe_django  the same endpoints as a one-file Django project that imports the rendered settings last
probe.php     the same endpoints as a PHP front controller, run by php-fpm from the rendered pool
scenarios what each slow request should meet first, and what it met
pool     which scenarios run at the same time: each on a worker that is free for it
runner   every scenario against the stack, in the order that lets the most of them overlap
report   the table or JSON, and the two verdicts: as predicted, and whether the chain held
progress the scenario running now, on a terminal's one line
"""
