"""The WSGI entry point: `flask` and gunicorn both find the app here."""
from lhb_review import create_app

app = create_app()
