"""Production: every secret from the environment, no defaults; HTTPS-aware security."""

from .base import *  # noqa: F403
from .base import MIDDLEWARE, ConfigurationError, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")
if len(SECRET_KEY) < 32:
    raise ConfigurationError("SECRET_KEY must be set to a random string of at least 32 characters.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

# Behind a proxy that terminates TLS and sets X-Forwarded-Proto. Off by default: the
# docker-compose stack serves plain HTTP on localhost.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
# https://docs.djangoproject.com/en/5.2/ref/middleware/#http-strict-transport-security
# Browsers that saw the header refuse plain HTTP for this many seconds, which cannot be
# taken back: 0 (no header) until the site is served over HTTPS for good.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0, minimum=0)
# ...on every subdomain too, and (preload) on browsers' built-in lists of such sites.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

# The web process serves its own static files (the admin's), collected at build time.
_after = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE = [
    *MIDDLEWARE[:_after],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_after:],
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
