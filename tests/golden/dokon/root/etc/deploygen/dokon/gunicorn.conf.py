# Written by deploygen 0.1.0 from dokon.yaml: edit the site file and render again,
# not this file (gunicorn-config).
# gunicorn reads this file with -c; every module-level name is a setting.

wsgi_app = "app:app"
chdir = "/var/www/dokon"
bind = ["unix:/run/dokon/gunicorn.sock"]  # dokon.yaml: server.bind
# Sockets and files the app creates: owner and group only (nginx is in the group).
umask = 0o007

workers = 3  # dokon.yaml: server.workers
worker_class = "sync"  # dokon.yaml: server.worker_class
threads = 1  # default: 1 thread (gunicorn's default)
max_requests = 1000  # dokon.yaml: server.max_requests
max_requests_jitter = 100  # derived: max_requests / 10

timeout = 300  # derived: = timeouts.request
graceful_timeout = 30  # derived: min(30s, gunicorn.timeout)
keepalive = 5  # default: 5s (above nginx's upstream keepalive_timeout)

# nginx in front sets X-Forwarded-For/-Proto/-Host; trust them only from it.
forwarded_allow_ips = "127.0.0.1,::1"  # derived: the address nginx connects from

# stdout and stderr go to journald through systemd.
accesslog = "-"
errorlog = "-"
capture_output = True

# gunicorn >= 25.1 opens a control socket under $HOME by default, which the
# unit's ProtectSystem=strict makes read-only; keep it in the runtime directory.
control_socket = "/run/dokon/gunicorn.ctl"
