"""The WSGI entry point role app serves: ``eservice.wsgi:app``."""

from eservice.app import create_app

app = create_app()
