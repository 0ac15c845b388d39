"""gunicorn settings for the LinkDesk web app (`--config python:service.gunicorn_conf`).

Threads serve requests; each worker process owns its Temporal client, created after fork on
first use (see service.temporal), so the app must not be preloaded into the master.
"""

import os

workers = int(os.environ.get("LINKDESK_WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("LINKDESK_WEB_THREADS", "8"))
preload_app = False
timeout = 60
graceful_timeout = 10
accesslog = "-"
errorlog = "-"
