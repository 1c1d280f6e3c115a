import multiprocessing
import os

bind = "127.0.0.1:8001"
workers = int(os.getenv("WORKERS", 3))
worker_class = "sync"
timeout = int(os.getenv('TIMEOUT', 120))
keepalive = 2
accesslog = "logs/access.log"
errorlog = "logs/error.log"
max_requests = multiprocessing.cpu_count() * 100
