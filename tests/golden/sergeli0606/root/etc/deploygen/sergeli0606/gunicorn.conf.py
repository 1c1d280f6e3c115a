# Written by deploygen 0.1.0 from sergeli0606.yaml: edit the site file and render again,
# not this file (gunicorn-config).
# gunicorn reads this file with -c; every module-level name is a setting.

wsgi_app = "app:app"
chdir = "/var/www/sergeli0606"
bind = ["127.0.0.1:8002"]  # sergeli0606.yaml: server.bind
# Sockets and files the app creates: owner and group only (nginx is in the group).
umask = 0o007

workers = 2  # sergeli0606.yaml: server.workers
worker_class = "gthread"  # sergeli0606.yaml: server.worker_class
threads = 4  # sergeli0606.yaml: server.threads
max_requests = 1000  # default: 1000
max_requests_jitter = 100  # derived: max_requests / 10

timeout = 300  # derived: = timeouts.request
graceful_timeout = 30  # derived: min(30s, gunicorn.timeout)
keepalive = 5  # sergeli0606.yaml: timeouts.gunicorn.keepalive

# nginx in front sets X-Forwarded-For/-Proto/-Host; trust them only from it.
forwarded_allow_ips = "127.0.0.1,::1"  # derived: the address nginx connects from

# stdout and stderr go to journald through systemd.
accesslog = "-"
errorlog = "-"
capture_output = True

# gunicorn >= 25.1 opens a control socket under $HOME by default, which the
# unit's ProtectSystem=strict makes read-only; keep it in the runtime directory.
control_socket = "/run/sergeli0606/gunicorn.ctl"
